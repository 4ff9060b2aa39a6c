#!/bin/bash
# Render the scrape config (every possible backend replica port), then run Prometheus as its user, as PID 1
# (setpriv execs it: it gets `docker stop`'s SIGTERM itself, without runuser's 2 s wait and SIGKILL).
set -euo pipefail
first=${BACKEND_PORT_FIRST:-53000}
last=${BACKEND_PORT_LAST:-$first}
export BIND_ADDRESS=${BIND_ADDRESS:-127.0.0.1}
targets=""
for p in $(seq "$first" "$last"); do targets+="'${BIND_ADDRESS}:${p}', "; done
export BACKEND_TARGETS="${targets%, }"
mkdir -p /run/prometheus && chown prometheus /run/prometheus /prometheus
export HOME=/var/lib/prometheus
envsubst '${BACKEND_TARGETS} ${BIND_ADDRESS} ${PROMETHEUS_PORT}' < /etc/prometheus/prometheus.yml.template > /run/prometheus/prometheus.yml
exec setpriv --reuid=prometheus --regid=prometheus --init-groups -- prometheus --config.file=/run/prometheus/prometheus.yml \
  --storage.tsdb.path=/prometheus --storage.tsdb.retention.time=7d \
  --web.listen-address="${BIND_ADDRESS}:${PROMETHEUS_PORT}" --web.enable-lifecycle
