#!/usr/bin/env bash
# Make the self-signed certificate nginx serves: $EM_STATE_DIR/nginx/ssl/server.{crt,key}.
# Usage: gen-cert.sh [--days N] [--out DIR] [--domain NAME] [--force]
# --days sets the validity (tests make one that is about to expire with --days 3).
set -euo pipefail
days=${SSL_CERT_DAYS:-365}
domain=${SSL_DOMAIN:-marketplace.local}
out="${EM_STATE_DIR:-/var/lib/equipment-marketplace}/nginx/ssl"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --days) days=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --domain) domain=$2; shift 2 ;;
    --force) force=1; shift ;;
    *) echo "gen-cert.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$days" in ''|*[!0-9]*) echo "gen-cert.sh: --days must be a positive integer" >&2; exit 2 ;; esac
mkdir -p "$out"
if [ "$force" = 0 ] && [ -s "$out/server.crt" ] && [ -s "$out/server.key" ]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -subj "/O=Equipment Marketplace (reference stack)/CN=$domain" \
  -addext "subjectAltName=DNS:$domain,DNS:localhost,IP:127.0.0.1" \
  -keyout "$tmp/server.key" -out "$tmp/server.crt" 2>/dev/null
chmod 0644 "$tmp/server.crt"; chmod 0640 "$tmp/server.key"
# nginx's master reads the key as root; keep it away from everyone else.
mv -f "$tmp/server.key" "$out/server.key"
mv -f "$tmp/server.crt" "$out/server.crt"
echo "certificate for $domain valid $days days: $out/server.crt"
