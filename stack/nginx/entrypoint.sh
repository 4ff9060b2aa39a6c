#!/bin/bash
# Render the site config from the stack's env (ports, backend replica ports), then run nginx.
set -euo pipefail
first=${BACKEND_PORT_FIRST:-53000}
last=${BACKEND_PORT_LAST:-$first}
servers=""
for p in $(seq "$first" "$last"); do
  servers+="    server ${BIND_ADDRESS:-127.0.0.1}:${p} max_fails=1 fail_timeout=5s;"$'\n'
done
export BACKEND_UPSTREAM_SERVERS="$servers"
export BIND_ADDRESS=${BIND_ADDRESS:-127.0.0.1}
mkdir -p /etc/nginx/maintenance
envsubst '${BACKEND_UPSTREAM_SERVERS} ${BIND_ADDRESS} ${NGINX_HTTP_PORT} ${NGINX_HTTPS_PORT} ${SSL_DOMAIN}' \
  < /etc/nginx/templates/default.conf.template > /etc/nginx/conf.d/default.conf
exec nginx -g 'daemon off;'
