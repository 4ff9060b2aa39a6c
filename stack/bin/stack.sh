#!/usr/bin/env bash
# Operate the reference Equipment Marketplace stack.
#   stack.sh build    build the images (cached: an unchanged context rebuilds nothing)
#   stack.sh up       build if needed, start, wait until every service is healthy, seed Redis
#   stack.sh down     stop and remove the containers (volumes and data stay)
#   stack.sh reset    remove containers and volumes, then start with fresh data
#   stack.sh status   docker compose ps
#   stack.sh compose ARGS...   run docker compose with the stack's file and env
# Env: STACK_WAIT_TIMEOUT (s, default 180); EM_STATE_DIR (default /var/lib/equipment-marketplace):
# the env file with the secrets (stack.env) and nginx's ssl/ and maintenance/ directories.
# EM_STACK_FAULT_ENDPOINTS=1 (the test harness sets it; nobody else should): `up` and `reset` switch on the
# backend's fault-injection endpoints (/api/fault/<status>). Without it they are off (`make demo`, operators).
# The choice is written to stack.env as ENABLE_FAULT_ENDPOINTS, so every later compose run (deploy, recover,
# incident) recreates the backend the same way until the next `up`.
set -euo pipefail
STACK_DIR=$(cd "$(dirname "$0")/.." && pwd)
# The stack is machine-wide (one compose project, fixed ports, named volumes), so its secrets and
# runtime files are too: they live in EM_STATE_DIR, and stack/.env is a link to the env file there.
# A second checkout on the same machine therefore drives the same stack with the same secrets.
EM_STATE_DIR=${EM_STATE_DIR:-/var/lib/equipment-marketplace}
ENV_FILE="$EM_STATE_DIR/stack.env"
ENV_LINK="$STACK_DIR/.env"
COMPOSE_FILE="$STACK_DIR/docker-compose.production.yml"
SERVICES=(postgres redis backend nginx prometheus)
log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

ENV_CREATED=0
ensure_env() {
  mkdir -p "$EM_STATE_DIR" 2>/dev/null && [ -w "$EM_STATE_DIR" ] \
    || die "cannot write $EM_STATE_DIR: run as root or set EM_STATE_DIR to a writable directory"
  chmod 700 "$EM_STATE_DIR"
  if [ ! -f "$ENV_FILE" ]; then
    ENV_CREATED=1
    log "creating $ENV_FILE with random secrets (from defaults.env)"
    umask 077
    local line key
    while IFS= read -r line || [ -n "$line" ]; do
      if [[ "$line" == *=CHANGE_ME ]]; then
        key=${line%%=*}
        printf '%s=%s\n' "$key" "$(openssl rand -hex 24)"
      else
        printf '%s\n' "$line"
      fi
    done < "$STACK_DIR/defaults.env" > "$ENV_FILE.tmp"
    printf 'EM_STATE_DIR=%s\n' "$EM_STATE_DIR" >> "$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
  fi
  chmod 600 "$ENV_FILE"
  if [ "$(readlink "$ENV_LINK" 2>/dev/null)" != "$ENV_FILE" ]; then
    rm -f "$ENV_LINK"
    ln -s "$ENV_FILE" "$ENV_LINK"
  fi
  set -a; . "$ENV_FILE"; set +a
}

compose() { docker compose --project-directory "$STACK_DIR" -f "$COMPOSE_FILE" --env-file "$ENV_FILE" "$@"; }

context_hash() {
  # Content of the build context plus the base image id: an unchanged pair means nothing to rebuild.
  local dir=$1 base_id
  base_id=$(docker image inspect -f '{{.Id}}' debian:bookworm-slim)
  { echo "$base_id"; echo "${2:-}"; (cd "$dir" && find . -type f | LC_ALL=C sort | xargs sha256sum); } | sha256sum | cut -c1-16
}

build_one() {
  local svc=$1 tag=$2; shift 2
  local dir="$STACK_DIR/$svc" hash current
  hash=$(context_hash "$dir" "$*")
  current=$(docker image inspect -f '{{ index .Config.Labels "em.context-hash" }}' "$tag" 2>/dev/null || true)
  if [ "$current" = "$hash" ]; then
    log "image $tag up to date"
    return 0
  fi
  log "building $tag"
  local blog; blog=$(mktemp)
  if ! DOCKER_BUILDKIT=0 docker build --network host --label "em.context-hash=$hash" -t "$tag" "$@" "$dir" >"$blog" 2>&1; then
    tail -n 40 "$blog" >&2; rm -f "$blog"
    die "docker build of $tag failed"
  fi
  rm -f "$blog"
}

build() {
  "$STACK_DIR/bin/ensure-base-image.sh"
  build_one postgres "$STACK_IMAGE_PREFIX/postgres:local"
  build_one redis "$STACK_IMAGE_PREFIX/redis:local"
  build_one backend "$STACK_IMAGE_PREFIX/backend:$BACKEND_VERSION" --build-arg "APP_VERSION=$BACKEND_VERSION"
  build_one nginx "$STACK_IMAGE_PREFIX/nginx:local"
  build_one prometheus "$STACK_IMAGE_PREFIX/prometheus:local"
}

prepare_dirs() {
  SSL_CERT_DAYS=$SSL_CERT_DAYS SSL_DOMAIN=$SSL_DOMAIN "$STACK_DIR/bin/gen-cert.sh" --out "$EM_STATE_DIR/nginx/ssl" >/dev/null
  mkdir -p "$EM_STATE_DIR/nginx/maintenance"
  mkdir -p "${MARKETPLACE_BACKUP_DIR:-/var/backups/equipment-marketplace}"
}

wait_healthy() {
  local timeout=${STACK_WAIT_TIMEOUT:-180} deadline svc state bad
  deadline=$(( $(date +%s) + timeout ))
  while :; do
    bad=()
    for svc in "${SERVICES[@]}"; do
      state=$(docker ps -a --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" \
        --filter "label=com.docker.compose.service=$svc" --format '{{.Status}}' | head -n1)
      case "$state" in
        *"(healthy)"*) ;;
        *) bad+=("$svc: ${state:-missing}") ;;
      esac
    done
    [ ${#bad[@]} -eq 0 ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      for b in "${bad[@]}"; do log "not healthy: $b"; done
      compose logs --tail 30 >&2 || true
      die "the stack did not become healthy within ${timeout}s"
    fi
    sleep 2
  done
}

drop_stale_data() {
  # A new .env holds new random secrets; data volumes left by an earlier checkout were initialised with
  # other passwords and would lock the new stack out. Start them afresh (the demo data is reproducible).
  if [ "$ENV_CREATED" = 1 ] && docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | grep -q .; then
    log "new secrets in $ENV_FILE: removing the old stack's containers and data volumes"
    compose down --remove-orphans --volumes >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME" | xargs -r docker volume rm -f >/dev/null
  fi
}

set_fault_endpoints() {
  local want=${EM_STACK_FAULT_ENDPOINTS:-0}
  case "$want" in 0|1) ;; *) die "EM_STACK_FAULT_ENDPOINTS must be 0 or 1, not '$want'" ;; esac
  if grep -q '^ENABLE_FAULT_ENDPOINTS=' "$ENV_FILE"; then
    if ! grep -qx "ENABLE_FAULT_ENDPOINTS=$want" "$ENV_FILE"; then
      sed -i "s/^ENABLE_FAULT_ENDPOINTS=.*/ENABLE_FAULT_ENDPOINTS=$want/" "$ENV_FILE"
    fi
  else
    printf 'ENABLE_FAULT_ENDPOINTS=%s\n' "$want" >> "$ENV_FILE"
  fi
  chmod 600 "$ENV_FILE"
  # ensure_env exported the file's old value, and compose prefers the environment to --env-file.
  export ENABLE_FAULT_ENDPOINTS=$want
  [ "$want" = 1 ] && log "fault endpoints ON (test harness)"
  return 0
}

up() {
  drop_stale_data
  set_fault_endpoints
  build
  prepare_dirs
  compose up -d --remove-orphans >/dev/null 2>&1 || compose up -d --remove-orphans
  wait_healthy
  compose exec -T redis /usr/local/bin/seed.sh >&2
  log "stack healthy: http://$BIND_ADDRESS:$NGINX_HTTP_PORT  https://$BIND_ADDRESS:$NGINX_HTTPS_PORT"
}

cmd=${1:-}
[ -n "$cmd" ] || die "usage: stack.sh build|up|down|reset|status|wait|compose ARGS..."
shift
ensure_env
case "$cmd" in
  build) build ;;
  up) up ;;
  wait) wait_healthy ;;
  down) compose down --remove-orphans ;;
  reset) compose down --remove-orphans --volumes; up ;;
  status) compose ps ;;
  compose) compose "$@" ;;
  *) die "unknown command $cmd" ;;
esac
