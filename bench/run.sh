#!/usr/bin/env bash
# Phonon benchmarks on this machine, loopback only, bounded loops.
#   bench/run.sh [BUILD_DIR]        (default: build)
# Prints Markdown rows; bench/README.md records the last results.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/phonon
N=${N:-40}            # recordings per run
PAR=${PAR:-8}         # concurrent clients
work=$(mktemp -d)
# nginx's workers run as nobody: a 0700 folder made every baseline request a
# fast 403 (the nginx rates recorded before 2026-12-02's read-path section).
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A 3 s spoken phrase, as phones record it.
espeak-ng -w "$work/speech.wav" "The quick brown fox jumps over the lazy dog, twice." 2>/dev/null
ffmpeg -loglevel error -y -i "$work/speech.wav" -t 3 -c:a aac -b:a 64k \
  -movflags +faststart "$work/phrase.m4a"

now() { date +%s.%N; }

start_serve() { # $1 = data dir, rest = flags; sets PORT
  local dir=$1; shift
  PORT=$(free_port)
  "$BIN" serve --host 127.0.0.1 --port "$PORT" --data-dir "$dir" \
    --log-level warn "$@" >"$dir.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$dir.log" >&2; exit 1
}

wait_ready_transcoders() { # $1 = expected remote transcoders
  for _ in $(seq 100); do
    n=$(curl -fs "http://127.0.0.1:$PORT/metrics" \
        | awk '/^phonon_transcoders\{kind="remote"\}/ {print $2}')
    [ "${n:-0}" = "$1" ] && return
    sleep 0.1
  done
  echo "workers did not join" >&2; exit 1
}

upload_all() { # uploads N recordings with PAR clients
  seq 1 "$N" | xargs -P "$PAR" -I{} curl -fs -o /dev/null \
    -F "audio_file=@$work/phrase.m4a" \
    "http://127.0.0.1:$PORT/audio/user/1/phrase/{}"
}

wait_all_ready() {
  for i in $(seq 1 "$N"); do
    for _ in $(seq 200); do
      curl -fs "http://127.0.0.1:$PORT/audio/user/1/phrase/$i" \
        | grep -q '"status":"ready"' && break
      sleep 0.02
    done
  done
}

convert_all() { # $1 = format: N first requests = N conversions
  seq 1 "$N" | xargs -P "$PAR" -I{} curl -fs -o /dev/null \
    "http://127.0.0.1:$PORT/audio/user/1/phrase/{}/$1"
}

# -- 1. upload -> ready vs. one ffmpeg process per file ---------------------------
t0=$(now)
for i in $(seq 1 "$N"); do
  ffmpeg -loglevel error -y -i "$work/phrase.m4a" "$work/out.wav"
done
t1=$(now)
printf '| `ffmpeg -i phrase.m4a out.wav`, one process per file (the earlier service) | %.1f ms each |\n' \
  "$(echo "($t1 - $t0) * 1000 / $N" | bc -l)"

# One keep-alive client: POST, then poll the metadata until "ready"; then
# GETs of the stored original over the same connection.
start_serve "$work/d1" --workers 2
echo "phonon_bench (upload -> ready, GET stored m4a):"
"$BUILD/phonon_bench" "$PORT" "$work/phrase.m4a" 200 1
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

# -- 2. conversion throughput: serve alone vs. + worker processes -----------------
run_case() { # $1 = label
  upload_all
  wait_all_ready
  t0=$(now)
  convert_all mp3
  t1=$(now)
  printf '| %s | %d mp3 conversions in %.2f s | %.1f conversions/s |\n' \
    "$1" "$N" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$N / ($t1 - $t0)" | bc -l)"
}

start_serve "$work/d2" --workers 2
run_case "serve node alone (2 local transcoders)"
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

for workers in 1 2; do
  CP=$(free_port)
  start_serve "$work/d3$workers" --workers 0 --set cluster.port="$CP"
  for w in $(seq "$workers"); do
    "$BIN" worker --join "127.0.0.1:$CP" --workers 2 --log-level warn \
      >"$work/w$w.log" 2>&1 &
    pids+=($!)
  done
  wait_ready_transcoders $((workers * 2))
  run_case "HTTP-only serve node + $workers worker process(es), 2 transcoders each"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done

# -- 3. GET of a stored file: phonon vs. nginx serving the same bytes ---------------
# nginx is not installed (its package wants system users this machine may
# not have): its Debian package is unpacked into the work folder and run
# from there with a minimal configuration.
start_serve "$work/d4" --workers 2
curl -fs -o /dev/null -H 'Content-Type: audio/mp4' --data-binary "@$work/phrase.m4a" \
  "http://127.0.0.1:$PORT/audio/user/1/phrase/1"
phonon_rps=$(wrk -t2 -c8 -d5s "http://127.0.0.1:$PORT/audio/user/1/phrase/1/m4a" \
  | awk '/Requests\/sec/ {print $2}')
printf '| GET stored m4a, phonon, wrk -t2 -c8 | %.0f req/s |\n' "$phonon_rps"
(cd "$work" && apt-get download nginx >/dev/null 2>&1 && dpkg -x nginx_*.deb ngx)
if [ -x "$work/ngx/usr/sbin/nginx" ]; then
  mkdir -p "$work/ngx/www" "$work/ngx/tmp" "$work/ngx/logs"
  cp "$work/phrase.m4a" "$work/ngx/www/a.m4a"
  NPORT=$(free_port)
  cat >"$work/ngx/nginx.conf" <<NGX
worker_processes 2;
pid $work/ngx/logs/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $work/ngx/tmp/body;
  proxy_temp_path $work/ngx/tmp/proxy;
  fastcgi_temp_path $work/ngx/tmp/fastcgi;
  uwsgi_temp_path $work/ngx/tmp/uwsgi;
  scgi_temp_path $work/ngx/tmp/scgi;
  types { audio/mp4 m4a; }
  server { listen 127.0.0.1:$NPORT; root $work/ngx/www; }
}
NGX
  "$work/ngx/usr/sbin/nginx" -p "$work/ngx" -c "$work/ngx/nginx.conf" \
    -e "$work/ngx/logs/error.log"
  sleep 0.2
  curl -fs -o "$work/ngx/check" "http://127.0.0.1:$NPORT/a.m4a" \
    && cmp -s "$work/ngx/check" "$work/phrase.m4a" \
    || { echo "nginx does not serve the file" >&2; exit 1; }
  nginx_rps=$(wrk -t2 -c8 -d5s "http://127.0.0.1:$NPORT/a.m4a" \
    | awk '/Requests\/sec/ {print $2}')
  kill "$(cat "$work/ngx/logs/nginx.pid")" 2>/dev/null || true
  printf '| GET the same file, nginx 1.22 (2 workers, sendfile), wrk -t2 -c8 | %.0f req/s |\n' "$nginx_rps"
else
  echo "| nginx baseline | not available (apt-get download failed) |"
fi

# -- 4. the read path: the phrase, a 60 s m4a and its wav, vs. nginx ---------
# (READ_PATH_OTHER=path/to/older/phonon adds its rates, same run)
bench/read_path.sh "$BUILD" ${READ_PATH_OTHER:-}
