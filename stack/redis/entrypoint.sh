#!/bin/bash
# Redis 7 for the reference stack. The password goes into a config file readable only by redis, not
# onto the command line (where `ps` and `docker inspect` would show it).
set -euo pipefail
: "${REDIS_PASSWORD:?REDIS_PASSWORD is required}"
conf=/run/redis/redis.conf
mkdir -p /run/redis /data
chown redis:redis /run/redis /data
umask 077
cat > "$conf" <<CONF
bind ${BIND_ADDRESS:-127.0.0.1}
port ${REDIS_PORT:-56379}
protected-mode yes
requirepass ${REDIS_PASSWORD}
maxmemory ${REDIS_MAXMEMORY:-256mb}
maxmemory-policy ${REDIS_MAXMEMORY_POLICY:-allkeys-lru}
maxclients 1000
dir /data
appendonly yes
appendfsync everysec
save 300 10
slowlog-log-slower-than 10000
slowlog-max-len 128
latency-monitor-threshold 50
daemonize no
logfile ""
CONF
chown redis:redis "$conf"
# The server runs as PID 1 and gets `docker stop`'s SIGTERM itself (runuser, as PID 1, passed it on and then
# always slept 2 s before a SIGKILL).
export HOME=/var/lib/redis
exec setpriv --reuid=redis --regid=redis --init-groups -- redis-server "$conf"
