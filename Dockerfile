# o365collector: slim, non-root image. Folder layout of the Devo seed:
#   /devo-collector/{certs,config,state}; CONFIG_FILE names the file in config/.
# A native config without state_dir keeps its state on the same volume
# (O365COLLECTOR_STATE_DIR), like a Devo file does.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY emulator ./emulator
RUN python -m pip install --no-cache-dir --upgrade pip \
    && python -m pip wheel --no-cache-dir --wheel-dir /wheels . ./emulator

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    O365C_HOME=/devo-collector \
    CONFIG_FILE=config.yaml \
    O365C_HEALTH_PORT=9464 \
    O365COLLECTOR_STATE_DIR=/devo-collector/state
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels \
    && groupadd --system --gid 10001 collector \
    && useradd --system --uid 10001 --gid collector --home-dir /devo-collector collector \
    && mkdir -p /devo-collector/certs /devo-collector/config /devo-collector/state \
    && chown -R collector:collector /devo-collector
COPY docker/entrypoint.sh /usr/local/bin/o365collector-entrypoint
COPY docker/healthcheck.py /usr/local/bin/o365collector-healthcheck
WORKDIR /devo-collector
USER collector
VOLUME ["/devo-collector/state"]
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "/usr/local/bin/o365collector-healthcheck"]
ENTRYPOINT ["/usr/local/bin/o365collector-entrypoint"]
