#!/usr/bin/env bash
# Creates a study CA and mTLS certificates for the coordinator and each site.
#   make-certs.sh OUT_DIR COORDINATOR_DNS_NAMES SITE...
#   e.g. make-certs.sh ./certs "coordinator,coord.example.org" ankle-hospital knee-hospital shoulder-hospital
# The site identity is the certificate subject CN (the coordinator lets a site write only as itself).
# Existing files are kept (re-running adds missing sites); keys are 0600. Needs openssl >= 1.1.1.
set -euo pipefail

if [ "$#" -lt 2 ]; then
  echo "usage: $0 OUT_DIR COORDINATOR_DNS_NAMES[,…] [SITE…]" >&2
  exit 2
fi
out="$1"; shift
names="$1"; shift
days="${FEDJOINT_CERT_DAYS:-825}"
mkdir -p "$out"
cd "$out"
umask 077

if [ ! -f ca.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 3650 \
    -keyout ca.key -out ca.pem -subj "/CN=fedjoint study CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
fi

issue() { # name cn extensions
  local name="$1" cn="$2" ext="$3"
  [ -f "$name.pem" ] && return 0
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -keyout "$name.key" -out "$name.csr" -subj "/CN=$cn"
  printf '%s\n' "$ext" > "$name.ext"
  openssl x509 -req -sha256 -days "$days" -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$name.pem" -extfile "$name.ext"
  rm -f "$name.csr" "$name.ext"
}

san=""
IFS=',' read -r -a dns <<< "$names"
for n in "${dns[@]}"; do san="${san:+$san,}DNS:$n"; done
issue coordinator "${dns[0]}" "subjectAltName=$san,IP:127.0.0.1
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"

for site in "$@"; do
  case "$site" in
    *[!A-Za-z0-9_-]*|"") echo "site id '$site': expected letters, digits, '_' or '-'" >&2; exit 2 ;;
  esac
  issue "$site" "$site" "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
done

# Readable by the unprivileged container user (uid 1000 = node); keys stay private to it.
chmod 0644 ./*.pem
chmod 0600 ./*.key
echo "certificates in $(pwd): ca.pem coordinator.{pem,key} $*" >&2
