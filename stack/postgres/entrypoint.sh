#!/bin/bash
# PostgreSQL 15 for the reference stack: initialise the cluster on first start (password auth over TCP,
# peer on the socket), create the application role and database, load the schema and the seed data,
# then run the server in the foreground as the postgres user.
set -euo pipefail
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is required}"
: "${APP_DB_PASSWORD:?APP_DB_PASSWORD is required}"
PGPORT=${POSTGRES_PORT:-55432}
BIND=${BIND_ADDRESS:-127.0.0.1}
DB=${POSTGRES_DB:-equipment_marketplace}
APP_USER=${APP_DB_USER:-marketplace}
SUPERUSER=${POSTGRES_SUPERUSER:-postgres}
export PGPORT

mkdir -p "$PGDATA" /var/run/postgresql
chown -R postgres:postgres "$PGDATA" /var/run/postgresql
chmod 0700 "$PGDATA"
as_pg() { runuser -u postgres -- "$@"; }

settings=(-c "listen_addresses=$BIND" -c "port=$PGPORT" -c shared_preload_libraries=pg_stat_statements
  -c pg_stat_statements.track=all -c max_connections=100 -c superuser_reserved_connections=3
  -c log_line_prefix='%m [%p] %q%u@%d ' -c log_min_duration_statement=2000 -c track_io_timing=on)

# The marker is written only after schema and seed succeeded: a cluster without it is a failed first
# start (killed, or a seed error) and is initialised again instead of being served half-seeded.
MARKER="$PGDATA/.em-initialized"
if [ ! -f "$MARKER" ]; then
  if [ -s "$PGDATA/PG_VERSION" ]; then
    echo "entrypoint: $PGDATA holds an unfinished initialisation; starting it again"
    find "$PGDATA" -mindepth 1 -delete
  fi
  echo "entrypoint: initialising a new cluster in $PGDATA"
  pwfile=$(umask 077; mktemp); chown postgres "$pwfile"; printf '%s' "$POSTGRES_PASSWORD" > "$pwfile"
  as_pg initdb -D "$PGDATA" -U "$SUPERUSER" --pwfile="$pwfile" --auth-local=peer --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  # Password (scram) for every TCP client; peer for the postgres OS user on the socket (docker exec).
  cat > "$PGDATA/pg_hba.conf" <<HBA
local   all   all                 peer map=docker
host    all   all   127.0.0.1/32  scram-sha-256
host    all   all   ::1/128       scram-sha-256
HBA
  cat > "$PGDATA/pg_ident.conf" <<IDENT
docker   postgres   $SUPERUSER
docker   root       $SUPERUSER
IDENT
  chown postgres:postgres "$PGDATA"/pg_hba.conf "$PGDATA"/pg_ident.conf
  as_pg pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c shared_preload_libraries=pg_stat_statements" -w start >/dev/null
  psql_local() { as_pg psql -X -q -v ON_ERROR_STOP=1 -U "$SUPERUSER" "$@"; }
  # No password in any argv (`ps`, /proc/<pid>/cmdline): initdb reads the superuser's from a 0600 file
  # (--pwfile), psql takes the application role's from its environment (\getenv), never from -v or -c.
  psql_local -d postgres -v app_user="$APP_USER" -v db="$DB" <<'SQL'
\getenv app_pw APP_DB_PASSWORD
CREATE ROLE :"app_user" LOGIN PASSWORD :'app_pw';
CREATE DATABASE :"db" OWNER :"app_user";
SQL
  psql_local -d "$DB" -v app_user="$APP_USER" -f /docker-init/schema.sql
  psql_local -d "$DB" -v app_user="$APP_USER" -v users="${SEED_USERS:-20000}" -v listings="${SEED_LISTINGS:-30000}" \
    -v orders="${SEED_ORDERS:-120000}" -f /docker-init/seed.sql
  as_pg pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  date -u +%FT%TZ > "$MARKER"
  echo "entrypoint: cluster ready"
fi

# setpriv execs the server as PID 1 (runuser would stay PID 1 as a parent that ignores the SIGINT of
# `docker stop`, so every stop waited out the 30 s grace period and ended in SIGKILL and crash recovery).
export HOME=/var/lib/postgresql
exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" "${settings[@]}"
