#!/usr/bin/env bash
# Make sure a Docker engine and the compose v2 plugin answer on this machine.
#
# As root on Debian it installs what is missing (docker.io, debootstrap, the compose v2 plugin from
# Debian trixie) and starts dockerd in the background when none answers (no systemd here).
# Anywhere else it prints what to do and exits 1.
set -euo pipefail

log() { printf '[ensure-docker] %s\n' "$*" >&2; }
die() { printf '[ensure-docker] ERROR: %s\n' "$*" >&2; exit 1; }

DOCKERD_LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
APT_UPDATED=0

is_debian() { [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; }
is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

need_pkg() { dpkg -s "$1" >/dev/null 2>&1; }

install_prereqs() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  command -v ss >/dev/null 2>&1 || missing+=(iproute2)
  command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || missing+=(nftables)
  need_pkg ca-certificates || missing+=(ca-certificates)
  # Host clients the benchmarks compare against (the runbook's own redis-cli and psql one-liners).
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# Compose v2: bookworm only has docker-compose 1.29 (v1); trixie's docker-compose package is the v2
# plugin and depends on nothing but libc6 >= 2.34, so fetch that one .deb and install it with dpkg.
install_compose_v2() {
  if docker compose version >/dev/null 2>&1; then return 0; fi
  log "installing the compose v2 plugin (Debian trixie package docker-compose)"
  local tmp; tmp=$(mktemp -d)
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
  echo "deb http://deb.debian.org/debian trixie main" > "$tmp/sources.list"
  local aptopts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o "Dir::Etc::SourceParts=-"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
  apt-get "${aptopts[@]}" update -qq
  (cd "$tmp" && apt-get "${aptopts[@]}" download docker-compose >/dev/null)
  dpkg -i "$tmp"/docker-compose_*.deb >/dev/null
  rm -rf "$tmp"
  docker compose version >/dev/null 2>&1 || die "the compose v2 plugin did not install"
}

start_dockerd() {
  log "starting dockerd in the background (log: $DOCKERD_LOG)"
  # No bridge, no iptables: every container of the stack uses host networking on 127.0.0.1.
  nohup dockerd --bridge=none --iptables=false --ip-masq=false >>"$DOCKERD_LOG" 2>&1 &
  for _ in $(seq 1 60); do
    docker_answers && return 0
    sleep 1
  done
  tail -n 30 "$DOCKERD_LOG" >&2 || true
  die "dockerd did not answer within 60 s"
}

main() {
  if ! is_root || ! is_debian; then
    if docker_answers && docker compose version >/dev/null 2>&1; then
      log "Docker engine and compose v2 answer"
      return 0
    fi
    die "no Docker engine (or no compose v2 plugin) answers, and this is not root on Debian, so nothing was installed.
  Install Docker Engine with the compose v2 plugin (https://docs.docker.com/engine/install/), start it,
  make sure 'docker info' and 'docker compose version' work for this user, then run this again."
  fi
  install_prereqs
  if ! docker_answers; then
    start_dockerd
  fi
  install_compose_v2
  log "Docker engine $(docker version --format '{{.Server.Version}}') and $(docker compose version --short 2>/dev/null | sed 's/^/compose /') answer"
}

main "$@"
