#!/bin/sh
# The image's entrypoint. With no arguments: `o365collector run` on
# $O365C_HOME/config/$CONFIG_FILE (the Devo seed's layout: certs/, config/, state/).
# Arguments choose the sub-command, given the same configuration unless they name one:
#   docker run IMAGE                  -> o365collector run --config …
#   docker run IMAGE check            -> o365collector check --config …
#   docker run IMAGE state show       -> o365collector state show --config …
#   docker run IMAGE backfill --since 2026-11-01T00:00:00Z
#   docker run IMAGE demo             -> o365collector demo --dir $O365C_HOME/state/demo
#   docker run IMAGE emulator …       -> o365collector emulator … (no configuration needed)
#   docker run IMAGE --help (or --version)
# Anything else runs as a command (`docker run -it IMAGE sh`).
set -eu
home="${O365C_HOME:-/devo-collector}"
config="$home/config/${CONFIG_FILE:-config.yaml}"

if [ "$#" -eq 0 ]; then
    set -- run
fi

# Does the command line already name a file with --config?
names_config() {
    for arg in "$@"; do
        case "$arg" in
            --config|--config=*) return 0 ;;
        esac
    done
    return 1
}

with_config() {
    if names_config "$@"; then
        exec o365collector "$@"
    fi
    # `--help` needs no configuration (and click would refuse the missing file first).
    for arg in "$@"; do
        if [ "$arg" = "--help" ]; then
            exec o365collector "$@"
        fi
    done
    if [ ! -f "$config" ]; then
        echo "o365collector: error: no configuration at $config; mount it into $home/config/ and set CONFIG_FILE" >&2
        exit 2
    fi
    exec o365collector "$@" --config "$config"
}

if [ -d "$home" ]; then
    cd "$home"
fi
case "$1" in
    run|check|validate|backfill)
        with_config "$@" ;;
    state)
        # `state` alone (or `state --help`) lists its sub-commands.
        if [ "$#" -lt 2 ] || [ "$2" = "--help" ]; then
            exec o365collector "$@"
        fi
        with_config "$@" ;;
    demo)
        shift
        for arg in "$@"; do
            case "$arg" in
                --dir|--dir=*) exec o365collector demo "$@" ;;
            esac
        done
        exec o365collector demo --dir "$home/state/demo" "$@" ;;
    emulator|--help|--version)
        exec o365collector "$@" ;;
    *)
        exec "$@" ;;
esac
