#!/usr/bin/env bash
# Runs a command against a private, throw-away MariaDB server:
#
#   scripts/with-mysql.sh CMD [ARGS...]
#
# Creates a temp folder, picks a free loopback port, starts the server with
# scripts/mysql-test-server.sh, exports APP_DATABASE_MYSQL_{HOST,PORT,
# DATABASE,USERNAME,PASSWORD}, runs CMD, then stops the server and removes
# the folder (also on failure or Ctrl-C). Exits with CMD's status. When the
# server cannot start, it says so and exits non-zero: a missing database is
# a failure, never a skipped test.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
server="$here/mysql-test-server.sh"

# Prints a TCP port nobody listens on, picked at random in 33060-40059 so
# that parallel runs (and ports still in TIME_WAIT) rarely collide.
free_port() {
  local port tries
  for ((tries = 0; tries < 200; ++tries)); do
    port=$((33060 + RANDOM % 7000))
    if ! command -v ss >/dev/null || ! ss -Htan "sport = :$port" | grep -q .
    then
      echo "$port"
      return 0
    fi
  done
  return 1
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/phonon-mysql.XXXXXX")

# shellcheck disable=SC2317 # called through the trap
cleanup() {
  local status=$?
  "$server" stop "$dir" || true
  rm -rf "$dir"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port can be taken between the check and the bind: try a few.
started=false
for attempt in 1 2 3 4 5; do
  if ! port=$(free_port); then
    echo "with-mysql: no free port found in 33060-40059" >&2
    exit 1
  fi
  if settings=$("$server" start "$dir" "$port"); then
    started=true
    break
  fi
  echo "with-mysql: start attempt $attempt on port $port failed" >&2
done
if ! $started; then
  echo "with-mysql: FAILED to start the MariaDB test server" \
       "(127.0.0.1:$port, $dir); not running: $*" >&2
  exit 1
fi
eval "$settings"

echo "with-mysql: MariaDB on 127.0.0.1:$port; running: $*" >&2
set +e
"$@"
status=$?
set -e
echo "with-mysql: command exited with $status" >&2
exit "$status"
