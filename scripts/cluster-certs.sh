#!/usr/bin/env bash
# Makes the certificates of a closed Phonon cluster with the openssl CLI: a
# private CA and one certificate per node, signed by that CA (README
# "Securing Phonon", docs/cluster-tls-readme.md).
#
#   scripts/cluster-certs.sh DIR [NAME...]
#
# DIR gets ca.pem + ca.key (the CA) and NAME.pem + NAME.key for every NAME
# (default: `serve` and `worker`). Idempotent: files that exist and still
# fit together are kept; a node certificate the current CA did not sign
# (the CA was replaced) or whose key does not match is issued again. The
# keys are EC P-256, readable by the owner only. Node certificates carry
# both TLS purposes (serverAuth and clientAuth): a serve node also joins
# itself through its isolated transcoders, and a worker is a TLS client.
#
# Keep ca.key off the nodes: it only signs new node certificates. Every node
# gets ca.pem, its own NAME.pem and its own NAME.key.
set -euo pipefail

usage() {
  echo "usage: $0 DIR [NAME...]   (NAME: letters, digits, '.', '_', '-';" \
       "default: serve worker)" >&2
  exit 2
}

[ $# -ge 1 ] || usage
dir=$1
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(serve worker)
for n in "${names[@]}"; do
  [[ $n =~ ^[A-Za-z0-9._-]+$ && $n != ca && $n != .* ]] || usage
done
command -v openssl >/dev/null 2>&1 || {
  echo "cluster-certs: the openssl CLI is missing (scripts/setup.sh" \
       "installs it)" >&2
  exit 1
}

# Years a certificate is valid; the CA outlives the node certificates.
ca_days=${CLUSTER_CA_DAYS:-3650}
node_days=${CLUSTER_NODE_DAYS:-825}

umask 077
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
scratch=$(mktemp -d "$dir/.tmp.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

new_key() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$1" 2>/dev/null
}

# The public key of a certificate and of a private key, for comparison.
cert_pub() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null; }
key_pub() { openssl pkey -in "$1" -pubout 2>/dev/null; }

# -- the CA --------------------------------------------------------------------
made=()
if [ ! -s "$dir/ca.key" ] || [ ! -s "$dir/ca.pem" ] \
   || [ "$(cert_pub "$dir/ca.pem")" != "$(key_pub "$dir/ca.key")" ]; then
  new_key "$scratch/ca.key"
  openssl req -x509 -new -key "$scratch/ca.key" -sha256 -days "$ca_days" \
    -subj "/CN=Phonon cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$scratch/ca.pem" 2>/dev/null
  mv "$scratch/ca.key" "$dir/ca.key"
  mv "$scratch/ca.pem" "$dir/ca.pem"
  made+=(ca)
fi
chmod 600 "$dir/ca.key"
chmod 644 "$dir/ca.pem"

# -- node certificates ---------------------------------------------------------
for n in "${names[@]}"; do
  key=$dir/$n.key
  crt=$dir/$n.pem
  if [ -s "$key" ] && [ -s "$crt" ] \
     && openssl verify -CAfile "$dir/ca.pem" "$crt" >/dev/null 2>&1 \
     && [ "$(cert_pub "$crt")" = "$(key_pub "$key")" ]; then
    continue
  fi
  [ -s "$key" ] && key_pub "$key" >/dev/null || new_key "$key"
  cat >"$scratch/$n.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:$n
EOF
  openssl req -new -key "$key" -subj "/CN=$n/O=Phonon cluster" \
    -out "$scratch/$n.csr" 2>/dev/null
  openssl x509 -req -in "$scratch/$n.csr" -CA "$dir/ca.pem" \
    -CAkey "$dir/ca.key" -CAcreateserial -CAserial "$scratch/ca.srl" \
    -sha256 -days "$node_days" -extfile "$scratch/$n.ext" \
    -out "$scratch/$n.pem" 2>/dev/null
  mv "$scratch/$n.pem" "$crt"
  chmod 600 "$key"
  chmod 644 "$crt"
  made+=("$n")
done

if [ ${#made[@]} -gt 0 ]; then
  echo "cluster-certs: made ${made[*]} in $dir"
else
  echo "cluster-certs: $dir is complete, nothing made"
fi

# -- the settings to use -------------------------------------------------------
for n in "${names[@]}"; do
  if [ "$n" = serve ]; then
    run="phonon serve --set cluster.port=4242 --set cluster.host=0.0.0.0"
  else
    run="phonon worker --join SERVE_HOST:4242"
  fi
  cat <<EOF

Node "$n":
  APP_CLUSTER_TLS_CERTIFICATE=$dir/$n.pem
  APP_CLUSTER_TLS_KEY=$dir/$n.key
  APP_CLUSTER_TLS_CA=$dir/ca.pem
  $run
EOF
done
cat <<EOF

The same keys in phonon.yaml: cluster.tls.certificate, cluster.tls.key and
cluster.tls.ca. Copy to each node only ca.pem and its own .pem and .key;
ca.key stays here for signing more nodes: $0 $dir NAME...
EOF
