#!/usr/bin/env bash
# Makes a self-signed development certificate for mailotp's listeners and portal.
# Usage: certs/make-dev-cert.sh [OUT_DIR] [HOSTNAME...]   (defaults: this folder, localhost)
# For production use a certificate from your CA (e.g. Let's Encrypt) and point tls.cert/key at it.
set -euo pipefail
out=${1:-$(dirname "$0")}
shift || true
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(localhost)
san="IP:127.0.0.1,IP:::1"
for h in "${hosts[@]}"; do san="DNS:$h,$san"; done
mkdir -p "$out"
if [ -s "$out/server.crt" ] && [ -s "$out/server.key" ]; then
  echo "$out/server.crt exists; remove it to make a new one"
  exit 0
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
  -subj "/CN=${hosts[0]}" -addext "subjectAltName=$san" \
  -keyout "$out/server.key" -out "$out/server.crt" 2>/dev/null
chmod 600 "$out/server.key"
echo "wrote $out/server.crt and $out/server.key (CN=${hosts[0]}, $san)"
