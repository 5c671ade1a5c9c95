#!/usr/bin/env bash
# GET of stored files, Phonon vs. nginx serving the same bytes, in one run,
# loopback only, bounded (each wrk run lasts DUR seconds, ROUNDS rounds
# with the servers taking turns; medians).
#   bench/read_path.sh [BUILD_DIR] [OTHER_PHONON_BINARY]
# Files: a 3 s phrase (m4a, from the memory cache), the phrase's mp3 (a
# cached derived format: converted once by the GET before measuring), a 60 s
# m4a (~500 KB, memory cache) and the 60 s recording's wav (~5 MiB, sendfile).
# READ_PATH_OUT=FILE also writes the raw figures there ("label.key req/s p50
# p99" per line) for bench/run.sh's target table. With a
# second binary (e.g. one built before a change) its rates are printed too,
# measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OTHER=${2:-}
DUR=${DUR:-3}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
work=$(mktemp -d)
chmod 755 "$work" # nginx workers run as nobody
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$work/ngx/logs/nginx.pid" ] && kill "$(cat "$work/ngx/logs/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

espeak-ng -w "$work/speech.wav" "The quick brown fox jumps over the lazy dog, twice." 2>/dev/null
ffmpeg -loglevel error -y -i "$work/speech.wav" -t 3 -c:a aac -b:a 64k \
  -movflags +faststart "$work/phrase.m4a"
ffmpeg -loglevel error -y -f lavfi -i "sine=frequency=440:duration=60:sample_rate=44100" \
  -ac 1 -c:a aac -b:a 64k -movflags +faststart "$work/long.m4a"

start_serve() { # $1 = binary, $2 = data dir; sets PORT
  PORT=$(free_port)
  # From the work folder: compiled defaults, no config/phonon.yaml (an
  # older binary may not know every key of today's file).
  (cd "$work" && exec "$1" serve --host 127.0.0.1 --port "$PORT" \
    --data-dir "$2" --log-level warn) >"$2.log" 2>&1 &
  pids+=($!)
  SPID=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$2.log" >&2; exit 1
}

upload() { # $1 = phrase id, $2 = file
  curl -fs -o /dev/null -F "audio_file=@$2" \
    "http://127.0.0.1:$PORT/audio/user/1/phrase/$1"
  for _ in $(seq 200); do
    curl -fs "http://127.0.0.1:$PORT/audio/user/1/phrase/$1" | grep -q '"ready"' && return
    sleep 0.05
  done
  echo "recording $1 not ready" >&2; exit 1
}

# wrk: "req/s p50_ms p99_ms"
rate() { # $1 = URL, $2 = connections
  wrk -t"$([ "$2" -lt 2 ] && echo 1 || echo 2)" -c"$2" -d"${DUR}s" --latency "$1" | awk '
    /Requests\/sec/ {r=$2}
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)}
    END {printf "%.0f %.3f %.3f\n", r, p50, p99}'
}

declare -A R   # label.figure -> "req/s p50 p99" (medians over the rounds)
declare -A S   # label.figure -> one line per round
declare -A BASE # label -> base URL (…/phrase/)
run_phonon() { # $1 = label, $2 = binary
  mkdir -p "$work/$1"
  start_serve "$2" "$work/$1/d"
  upload 1 "$work/phrase.m4a"
  upload 2 "$work/long.m4a"
  curl -fs -o "$work/a.m4a" "http://127.0.0.1:$PORT/audio/user/1/phrase/1/m4a"
  # The first GET converts (and caches) the mp3; the measured ones are hits.
  curl -fs -o "$work/a.mp3" "http://127.0.0.1:$PORT/audio/user/1/phrase/1/mp3"
  curl -fs -o "$work/long_stored.m4a" "http://127.0.0.1:$PORT/audio/user/1/phrase/2/m4a"
  curl -fs -o "$work/long.wav" "http://127.0.0.1:$PORT/audio/user/1/phrase/2/wav"
  BASE[$1]="http://127.0.0.1:$PORT/audio/user/1/phrase"
}

run_phonon phonon "$(realpath "$BUILD/phonon")"
[ -n "$OTHER" ] && run_phonon other "$(realpath "$OTHER")"

(cd "$work" && { cp /var/cache/apt/archives/nginx_*_amd64.deb . 2>/dev/null \
  || apt-get download nginx >/dev/null 2>&1; } && dpkg -x nginx_*.deb ngx)
if [ ! -x "$work/ngx/usr/sbin/nginx" ]; then
  echo "nginx baseline not available (apt-get download failed)" >&2; exit 1
fi
# The same paths as Phonon's below .../phrase/: 1/m4a, 1/mp3, 2/m4a, 2/wav.
mkdir -p "$work/ngx/www/1" "$work/ngx/www/2" "$work/ngx/tmp" "$work/ngx/logs"
cp "$work/a.m4a" "$work/ngx/www/1/m4a"
cp "$work/a.mp3" "$work/ngx/www/1/mp3"
cp "$work/long_stored.m4a" "$work/ngx/www/2/m4a"
cp "$work/long.wav" "$work/ngx/www/2/wav"
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
  types { }
  default_type audio/mp4;
  server {
    listen 127.0.0.1:$NPORT; root $work/ngx/www;
    location ~ /mp3\$ { default_type audio/mpeg; }
    location ~ /wav\$ { default_type audio/wav; }
  }
}
NGX
"$work/ngx/usr/sbin/nginx" -p "$work/ngx" -c "$work/ngx/nginx.conf" \
  -e "$work/ngx/logs/error.log"
sleep 0.2
curl -fs -o "$work/check.m4a" "http://127.0.0.1:$NPORT/1/m4a"
cmp -s "$work/check.m4a" "$work/a.m4a" || { echo "nginx serves other bytes" >&2; exit 1; }
BASE[nginx]="http://127.0.0.1:$NPORT"
labels="phonon nginx"
[ -n "$OTHER" ] && labels="phonon other nginx"

# Every server stays up; each figure is measured ROUNDS times, the servers
# taking turns within a round, and each column's median is kept: a change
# in the background load then hits all of them alike instead of whichever
# ran during it.
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
figure() { # $1 = key, $2 = path below the base, $3 = connections
  local r l c
  for r in $(seq "$ROUNDS"); do
    for l in $labels; do
      S[$l.$1]+="$(rate "${BASE[$l]}/$2" "$3")"$'\n'
    done
  done
  for l in $labels; do
    R[$l.$1]="$(for c in 1 2 3; do printf '%s\n' "${S[$l.$1]}" | awk 'NF' | cut -d' ' -f"$c" | median; done | paste -sd' ')"
  done
}
figure m4a64 1/m4a "$CONNS"
figure m4a1 1/m4a 1
figure mp3 1/mp3 "$CONNS"
figure long 2/m4a "$CONNS"
figure wav 2/wav 8
kill "$(cat "$work/ngx/logs/nginx.pid")" 2>/dev/null || true

if [ -n "${READ_PATH_OUT:-}" ]; then
  for k in "${!R[@]}"; do echo "$k ${R[$k]}"; done >"$READ_PATH_OUT"
fi

ratio() { echo "scale=2; $1 / $2" | bc; }
col() { echo "${R[$1]}" | cut -d' ' -f"$2"; }
printf 'sizes: phrase m4a %s B, phrase mp3 %s B, 60 s m4a %s B, 60 s wav %s B\n' \
  "$(stat -c%s "$work/a.m4a")" "$(stat -c%s "$work/a.mp3")" "$(stat -c%s "$work/long_stored.m4a")" "$(stat -c%s "$work/long.wav")"
echo "rounds: $ROUNDS x ${DUR} s per server and figure, servers alternating; medians"
echo "| figure | $(echo $labels | sed 's/ / | /g') | phonon / nginx |$([ -n "$OTHER" ] && echo ' other / nginx |')"
echo "|---|$(for _ in $labels; do printf -- '---|'; done)---|$([ -n "$OTHER" ] && echo '---|')"
row() { # $1 = title, $2 = key, $3 = column (1 rate, 2 p50, 3 p99), $4 = invert
  local line="| $1 |" l v n
  for l in $labels; do line+=" $(col "$l.$2" "$3") |"; done
  n=$(col "nginx.$2" "$3")
  for l in phonon ${OTHER:+other}; do
    v=$(col "$l.$2" "$3")
    line+=" $(ratio "$v" "$n") |"
  done
  echo "$line"
}
row "GET phrase m4a req/s, $CONNS conns" m4a64 1
row "GET phrase m4a p99 ms, $CONNS conns" m4a64 3
row "GET phrase m4a p50 ms, 1 conn" m4a1 2
row "GET phrase mp3 (cached derived) req/s, $CONNS conns" mp3 1
row "GET 60 s m4a req/s, $CONNS conns" long 1
row "GET 60 s wav (sendfile) req/s, 8 conns" wav 1
