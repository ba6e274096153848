#!/bin/sh
# Start the collector on $O365C_HOME/config/$CONFIG_FILE (the Devo seed's layout).
# Arguments, if any, replace the default command (e.g. `check`, `state show`).
set -eu
home="${O365C_HOME:-/devo-collector}"
config="$home/config/${CONFIG_FILE:-config.yaml}"
if [ ! -f "$config" ]; then
    echo "o365collector: error: no configuration at $config; mount it into $home/config/ and set CONFIG_FILE" >&2
    exit 2
fi
cd "$home"
if [ "$#" -eq 0 ]; then
    set -- run
fi
case "$1" in
    run|check|validate|backfill) exec o365collector "$@" --config "$config" ;;
    state) exec o365collector "$@" --config "$config" ;;
    *) exec "$@" ;;
esac
