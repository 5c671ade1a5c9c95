#!/usr/bin/env bash
# A private, throw-away MariaDB server for Phonon's MySQL tests.
#
#   mysql-test-server.sh start DIR PORT   initialise DIR/data (once), start
#                                         mariadbd on 127.0.0.1:PORT, create
#                                         database phonon_test and user
#                                         phonon/phonon, print the settings
#   mysql-test-server.sh stop DIR         shut the server down cleanly
#   mysql-test-server.sh status DIR       exit 0 while running, 3 otherwise
#
# `start` prints only `export APP_DATABASE_MYSQL_...=...` lines on stdout
# (everything else goes to stderr), so callers can
#   eval "$(scripts/mysql-test-server.sh start "$dir" "$port")"
# The server reads no option file (--no-defaults), listens on the loopback
# address only and keeps everything (data, socket, pid, log) inside DIR.
# Works as root (mariadbd runs with --user of the caller).
set -euo pipefail

MARIADBD=${MARIADBD:-/usr/sbin/mariadbd}
START_TIMEOUT=30
STOP_TIMEOUT=30

DB_NAME=phonon_test
DB_USER=phonon
DB_PASSWORD=phonon

usage() {
  echo "usage: $0 start DIR PORT | stop DIR | status DIR" >&2
  exit 2
}

log() {
  echo "mysql-test-server: $*" >&2
}

die() {
  log "$*"
  exit 1
}

# Sets the paths of the instance in DIR (made absolute).
paths() {
  [ -d "$1" ] || mkdir -p "$1"
  DIR=$(cd "$1" && pwd)
  DATA="$DIR/data"
  SOCK="$DIR/mysqld.sock"
  PID_FILE="$DIR/mysqld.pid"
  LOG="$DIR/mysqld.log"
  TMP="$DIR/tmp"
  # sun_path holds 108 bytes; a longer path fails late and obscurely.
  if [ "${#SOCK}" -gt 100 ]; then
    die "socket path too long (${#SOCK} > 100 bytes): $SOCK"
  fi
}

# Prints the pid of a live server of this instance, or fails.
live_pid() {
  local pid
  [ -s "$PID_FILE" ] || return 1
  pid=$(cat "$PID_FILE")
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

admin() {
  mariadb-admin --no-defaults --socket="$SOCK" --user=root \
    --connect-timeout=2 "$@"
}

# Runs the SQL on stdin as root (through the socket).
client() {
  mariadb --no-defaults --socket="$SOCK" --user=root
}

show_log() {
  if [ -f "$LOG" ]; then
    log "last lines of $LOG:"
    tail -n 30 "$LOG" >&2
  else
    log "no log at $LOG"
  fi
}

start() {
  local port=$1 pid i
  if ! [[ "$port" =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] \
    || [ "$port" -gt 65535 ]; then
    die "bad port: $port"
  fi
  if pid=$(live_pid); then
    die "a server already runs in $DIR (pid $pid); stop it first"
  fi
  command -v mariadb-install-db >/dev/null \
    || die "mariadb-install-db not found (install mariadb-server)"
  [ -x "$MARIADBD" ] || die "$MARIADBD not found (install mariadb-server)"
  mkdir -p "$TMP"
  rm -f "$SOCK" "$PID_FILE"
  local user
  user=$(id -un)
  if [ ! -d "$DATA/mysql" ]; then
    log "initialising $DATA"
    if ! mariadb-install-db --no-defaults --datadir="$DATA" --user="$user" \
        --auth-root-authentication-method=normal --skip-test-db \
        --skip-name-resolve >"$DIR/install.log" 2>&1; then
      tail -n 30 "$DIR/install.log" >&2
      die "mariadb-install-db failed (see $DIR/install.log)"
    fi
  fi
  log "starting $MARIADBD on 127.0.0.1:$port"
  # setsid: a Ctrl-C meant for the test run must not reach the server
  # before the caller's trap stops it cleanly. No descriptor of ours stays
  # open in the server.
  setsid "$MARIADBD" --no-defaults \
    --user="$user" \
    --datadir="$DATA" \
    --tmpdir="$TMP" \
    --socket="$SOCK" \
    --pid-file="$PID_FILE" \
    --log-error="$LOG" \
    --port="$port" \
    --bind-address=127.0.0.1 \
    --skip-name-resolve \
    --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=32M \
    --innodb-flush-log-at-trx-commit=2 \
    --max-connections=100 \
    --skip-log-bin \
    </dev/null >>"$LOG" 2>&1 &
  local child=$!
  for ((i = 0; i < START_TIMEOUT * 5; ++i)); do
    if admin ping >/dev/null 2>&1; then
      break
    fi
    if ! kill -0 "$child" 2>/dev/null; then
      show_log
      die "mariadbd exited during start-up"
    fi
    sleep 0.2
  done
  if ! admin ping >/dev/null 2>&1; then
    show_log
    kill -TERM "$child" 2>/dev/null || true
    die "mariadbd did not answer within ${START_TIMEOUT}s"
  fi
  # Accounts only for the loopback address and the local socket: nothing
  # from elsewhere can log in, whatever the network looks like. root (no
  # password) keeps only its socket account, which lives inside DIR.
  if ! client <<SQL
DELETE FROM mysql.global_priv
  WHERE User IN ('root', '') AND Host <> 'localhost';
DELETE FROM mysql.proxies_priv WHERE Host <> 'localhost';
FLUSH PRIVILEGES;
CREATE DATABASE IF NOT EXISTS $DB_NAME
  CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1'
  IDENTIFIED BY '$DB_PASSWORD';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost'
  IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
-- Integration tests give every server they start a database of its own,
-- named ${DB_NAME}_<n>.
GRANT ALL PRIVILEGES ON \`${DB_NAME}\\_%\`.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`${DB_NAME}\\_%\`.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
  then
    show_log
    stop_server || true
    die "could not create database $DB_NAME and user $DB_USER"
  fi
  log "ready (pid $(cat "$PID_FILE" 2>/dev/null || echo "$child"))"
  echo "export APP_DATABASE_MYSQL_HOST=127.0.0.1"
  echo "export APP_DATABASE_MYSQL_PORT=$port"
  echo "export APP_DATABASE_MYSQL_DATABASE=$DB_NAME"
  echo "export APP_DATABASE_MYSQL_USERNAME=$DB_USER"
  echo "export APP_DATABASE_MYSQL_PASSWORD=$DB_PASSWORD"
}

stop_server() {
  local pid i
  if ! pid=$(live_pid); then
    log "no server running in $DIR"
    return 0
  fi
  log "stopping pid $pid"
  admin shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < STOP_TIMEOUT * 5; ++i)); do
    kill -0 "$pid" 2>/dev/null || {
      log "stopped"
      return 0
    }
    sleep 0.2
  done
  log "pid $pid still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  show_log
  return 1
}

status() {
  local pid
  if pid=$(live_pid) && admin ping >/dev/null 2>&1; then
    echo "running (pid $pid, socket $SOCK)"
    return 0
  fi
  echo "stopped"
  return 3
}

[ $# -ge 2 ] || usage
cmd=$1
case "$cmd" in
  start)
    [ $# -eq 3 ] || usage
    paths "$2"
    start "$3"
    ;;
  stop)
    [ $# -eq 2 ] || usage
    paths "$2"
    stop_server
    ;;
  status)
    [ $# -eq 2 ] || usage
    paths "$2"
    status
    ;;
  *)
    usage
    ;;
esac
