#!/bin/sh
# Checks the scale profile of docker/docker-compose.yml without an engine
# (ctest compose_scale_services):
#   tests/compose_scale_check.sh [path/to/docker-compose.yml]
# - every service of the profile is defined and belongs to profile "scale";
# - phonon-b joins the cluster (APP_CLUSTER_JOIN) and both HTTP nodes use the
#   S3 store (APP_STORAGE_TYPE: s3);
# - worker-s3 uses the S3 store with the same endpoint, bucket and prefix as
#   phonon-a, the node it joins (else it would get its jobs in chunks
#   instead of reading and writing the bucket itself).
# docker-compose 1.29's `config --services` lists every service whatever the
# profile, hence the profile check on the rendered config.
set -u

here=$(cd "$(dirname "$0")" && pwd)
file=${1:-$here/../docker/docker-compose.yml}
fail=0
err() { echo "compose_scale_check: $*" >&2; fail=1; }

services=$(docker-compose -f "$file" --profile scale config --services) \
  || { echo "compose_scale_check: config --services failed" >&2; exit 1; }
config=$(docker-compose -f "$file" --profile scale config) \
  || { echo "compose_scale_check: config failed" >&2; exit 1; }

# block NAME: the rendered definition of service NAME (2-space indent).
block() {
  printf '%s\n' "$config" | awk -v name="  $1:" '
    $0 == "services:" { in_services = 1; next }
    in_services && /^[^ ]/ { in_services = 0 }
    in_services && $0 == name { on = 1; next }
    on && /^  [^ ]/ { on = 0 }
    on { print }'
}

for s in phonon-a phonon-b worker-s3 mysql-scale minio minio-init; do
  if ! printf '%s\n' "$services" | grep -qx "$s"; then
    err "service $s missing"
    continue
  fi
  block "$s" | grep -qx '    - scale' || err "service $s not in profile scale"
done

for s in phonon-a phonon-b; do
  block "$s" | grep -qx '      APP_STORAGE_TYPE: s3' \
    || err "$s: APP_STORAGE_TYPE is not s3"
done
for v in APP_STORAGE_TYPE APP_STORAGE_S3_ENDPOINT APP_STORAGE_S3_BUCKET \
         APP_STORAGE_S3_PREFIX; do
  want=$(block phonon-a | grep "^      $v:")
  have=$(block worker-s3 | grep "^      $v:")
  [ -n "$want" ] && [ "$want" = "$have" ] \
    || err "worker-s3: $v differs from phonon-a's ('$have' vs '$want')"
done
block phonon-b | grep -q '^      APP_CLUSTER_JOIN: phonon-a:4242$' \
  || err "phonon-b: APP_CLUSTER_JOIN phonon-a:4242 missing"
block phonon-a | grep -q '^      APP_CLUSTER_JOIN:' \
  && err "phonon-a: must not have APP_CLUSTER_JOIN"

[ "$fail" -eq 0 ] && echo "compose_scale_check: ok"
exit "$fail"
