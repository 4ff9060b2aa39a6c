#!/bin/bash
# Seed Redis with keys shaped like the application's, once (marker keys meta:seeded and meta:cache_seeded, db 0).
# Run by stack.sh through `docker compose exec`: REDISCLI_AUTH carries the password, never argv.
# Like the backend, the response cache (cache:* keys) goes to its own database REDIS_CACHE_DB (default 1);
# sessions, rate limits, config and the markers stay in db 0.
set -euo pipefail
export REDISCLI_AUTH="$REDIS_PASSWORD"
CACHE_DB=${REDIS_CACHE_DB:-1}
case "$CACHE_DB" in ''|*[!0-9]*) echo "REDIS_CACHE_DB must be a database number, not '$CACHE_DB'" >&2; exit 1 ;; esac
cli() { redis-cli -h "${BIND_ADDRESS:-127.0.0.1}" -p "${REDIS_PORT:-56379}" "$@"; }

if [ "$(cli EXISTS meta:seeded)" != 1 ]; then
  {
    for i in $(seq 1 500); do
      printf 'HSET session:seed%05d user_id %d created_at %d\n' "$i" "$i" "$(date +%s)"
      printf 'EXPIRE session:seed%05d 604800\n' "$i"
    done
    for i in $(seq 1 100); do
      printf 'SET ratelimit:user:%d %d EX 3600\n' "$i" $((i % 50))
    done
    printf 'HSET app:config maintenance 0 feature_search 1\n'
    printf 'SET meta:seeded %s\n' "$(date -u +%FT%TZ)"
  } | cli --pipe >/dev/null
fi

if [ "$(cli EXISTS meta:cache_seeded)" != 1 ]; then
  if [ "$CACHE_DB" != 0 ]; then
    # Data seeded before the cache had its own database kept cache:* keys in db 0: they move out (dropped).
    cli --scan --pattern 'cache:*' | while IFS= read -r key; do printf 'UNLINK %s\n' "$key"; done \
      | cli --pipe >/dev/null
  fi
  {
    for i in $(seq 1 2000); do
      printf 'SET cache:listing:%d "{\\"id\\":%d,\\"title\\":\\"Listing %d\\"}" EX %d\n' "$i" "$i" "$i" $((86400 + i))
    done
    for c in earthmoving access concrete power handling compaction; do
      for p in $(seq 1 20); do
        printf 'SET cache:listings:%s:%d "[]" EX 86400\n' "$c" "$p"
      done
    done
  } | cli -n "$CACHE_DB" --pipe >/dev/null
  cli SET meta:cache_seeded "db $CACHE_DB $(date -u +%FT%TZ)" >/dev/null
fi
echo "redis seeded: db 0 $(cli DBSIZE) keys, cache db $CACHE_DB $(cli -n "$CACHE_DB" DBSIZE) keys"
