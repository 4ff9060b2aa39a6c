#!/bin/bash
# Seed Redis with keys shaped like the application's, once (marker key meta:seeded).
# Run by stack.sh through `docker compose exec`: REDISCLI_AUTH carries the password, never argv.
set -euo pipefail
export REDISCLI_AUTH="$REDIS_PASSWORD"
cli() { redis-cli -h "${BIND_ADDRESS:-127.0.0.1}" -p "${REDIS_PORT:-56379}" "$@"; }
if [ "$(cli EXISTS meta:seeded)" = 1 ]; then
  echo "redis already seeded"
  exit 0
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
echo "redis seeded: $(cli DBSIZE) keys"
