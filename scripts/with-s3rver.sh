#!/usr/bin/env bash
# Runs a command against a private, throw-away S3-compatible server:
#
#   scripts/with-s3rver.sh CMD [ARGS...]
#
# Starts s3rver (scripts/s3rver.js, @20minutes/s3rver pinned in
# package-lock.json) on 127.0.0.1 and a free port with a data folder in a
# temp folder and the bucket "phonon", exports APP_STORAGE_TYPE=s3 and
# APP_STORAGE_S3_{ENDPOINT,BUCKET,ACCESS_KEY,SECRET_KEY,REGION,PATH_STYLE},
# runs CMD, then stops the server and removes the folder (also on failure or
# Ctrl-C). Exits with CMD's status; when the server cannot start it says so
# and exits non-zero (never a skipped test). The integration tests give
# every Phonon server they start a prefix of its own in that bucket
# (tests/integration/support.cpp).
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
"$here/npm-ci.sh" >&2

dir=$(mktemp -d "${TMPDIR:-/tmp}/phonon-s3rver.XXXXXX")
pid=""

# shellcheck disable=SC2317 # called through the trap
cleanup() {
  local status=$?
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$dir/data"
node --openssl-legacy-provider "$here/s3rver.js" -d "$dir/data" \
  -a 127.0.0.1 -p 0 --no-vhost-buckets --configure-bucket phonon \
  > "$dir/log" 2>&1 &
pid=$!

port=""
for _ in $(seq 1 300); do
  port=$(sed -n 's/.*S3rver listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
         "$dir/log" | head -n 1)
  [ -n "$port" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "with-s3rver: FAILED to start s3rver; its output:" >&2
  cat "$dir/log" >&2
  exit 1
fi

export APP_STORAGE_TYPE=s3
export APP_STORAGE_S3_ENDPOINT="http://127.0.0.1:$port"
export APP_STORAGE_S3_BUCKET=phonon
export APP_STORAGE_S3_ACCESS_KEY=S3RVER
export APP_STORAGE_S3_SECRET_KEY=S3RVER
export APP_STORAGE_S3_REGION=us-east-1
export APP_STORAGE_S3_PATH_STYLE=true

echo "with-s3rver: s3rver on 127.0.0.1:$port; running: $*" >&2
set +e
"$@"
status=$?
set -e
echo "with-s3rver: command exited with $status" >&2
exit "$status"
