#!/usr/bin/env bash
# Make sure the base image of the reference stack exists: debian:bookworm-slim.
# Pull it when a registry answers; otherwise build an equivalent minimal rootfs with debootstrap and
# `docker import` it under that name (no registry is reachable on the CI machines).
set -euo pipefail
BASE_IMAGE=${BASE_IMAGE:-debian:bookworm-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
log() { printf '[base-image] %s\n' "$*" >&2; }

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE present"
  exit 0
fi
if timeout 60 docker pull "$BASE_IMAGE" >/dev/null 2>&1; then
  log "pulled $BASE_IMAGE"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || { log "debootstrap missing: run scripts/ensure-docker.sh first"; exit 1; }
log "no registry: building $BASE_IMAGE with debootstrap (about a minute)"
root=$(mktemp -d /var/tmp/em-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$MIRROR" >/var/tmp/em-debootstrap.log 2>&1 \
  || { tail -n 20 /var/tmp/em-debootstrap.log >&2; exit 1; }
# Slim it like the official image: no apt lists, no docs.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/usr/share/doc/* "$root"/usr/share/man/*
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
  "$MIRROR" "$MIRROR" > "$root/etc/apt/sources.list"
tar -C "$root" -c . | docker import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
log "imported $BASE_IMAGE"
