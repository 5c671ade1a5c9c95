#!/usr/bin/env bash
# Phonon benchmarks on this machine, loopback only, bounded loops.
#   bench/run.sh [BUILD_DIR]        (default: build; `make bench`)
# Prints every row of issue 10's target table as a ratio against its
# baseline measured in the same run (nginx serving the same bytes, the
# ffmpeg CLI, the raw libav decode and the bare libmp3lame encode), as one
# Markdown table "figure | Phonon | baseline | ratio | target | met?".
# bench/README.md says what each row measures and records the last results.
#   CLUSTER=1   also the older comparison of conversion throughput with
#               `phonon worker` processes (N recordings, PAR clients)
#   MEM_VARIANT the allocator variant of the memory rows (bench/memory.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$BUILD/phonon
N=${N:-40}              # recordings per run (CLUSTER=1)
PAR=${PAR:-8}           # concurrent clients (CLUSTER=1)
UPLOADS=${UPLOADS:-200} # upload -> ready, one keep-alive client
FIRSTS=${FIRSTS:-40}    # first GETs of mp3 (one conversion each)
FF_RUNS=${FF_RUNS:-20}  # ffmpeg processes
LOAD_CONNS=${LOAD_CONNS:-16}
LOAD_SECONDS=${LOAD_SECONDS:-10}
for t in phonon phonon_bench phonon_media_bench; do
  [ -x "$BUILD/$t" ] || { echo "run.sh: $BUILD/$t missing (make -C $BUILD $t)" >&2; exit 1; }
done
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
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
say() { echo "$*" >&2; }
T_START=$(date +%s)
LOAD_START=$(loadavg)
say "bench: $(date -u '+%F %T') UTC, load average $LOAD_START, $(git rev-parse --short HEAD 2>/dev/null || echo '?')"

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
stop_serve() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
}
field() { # $1 = line, $2 = key: value of key=value (units stripped)
  echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k {sub(/(ms|\/s)$/, "", $2); print $2}'
}

# -- 1. in-process baselines: raw decode of the phrase ------------------------
DEC=$("$BUILD/phonon_media_bench" decode "$work/phrase.m4a" 200)
say "$DEC"
DEC_MS=$(field "$DEC" median_ms)

# -- 2. one ffmpeg process per file (the earlier service) ---------------------
for _ in $(seq 1 "$FF_RUNS"); do
  t0=$(now)
  ffmpeg -loglevel error -y -i "$work/phrase.m4a" "$work/out.wav"
  t1=$(now)
  echo "($t1 - $t0) * 1000" | bc -l
done | sort -n >"$work/ff"
FF_MS=$(sed -n "$((FF_RUNS / 2 + 1))p" "$work/ff")
say "ffmpeg -i phrase.m4a out.wav, one process each: median $(printf %.1f "$FF_MS") ms ($FF_RUNS runs)"

# -- 3. upload -> ready and the first GET of mp3, one keep-alive client -------
start_serve "$work/d1" --workers 2
UP=$("$BUILD/phonon_bench" "$PORT" "$work/phrase.m4a" "$UPLOADS" 1 "$FIRSTS" mp3)
say "$UP"
UP_LINE=$(echo "$UP" | grep '^upload->ready')
UP_MS=$(field "$UP_LINE" p50)
MP3_LINE=$(echo "$UP" | grep '^first GET mp3')
MP3_MS=$(field "$MP3_LINE" p50)
# The bare encode starts from the same master Phonon converts.
curl -fs -o "$work/master.wav" "http://127.0.0.1:$PORT/audio/user/1/phrase/1/wav"
stop_serve
ENC=$("$BUILD/phonon_media_bench" mp3 "$work/master.wav" 100)
say "$ENC"
ENC_MS=$(field "$ENC" median_ms)

# -- 4. sustained conversions under upload load --------------------------------
start_serve "$work/d2" --workers 2
LOADL=$("$BUILD/phonon_bench" load "$PORT" "$work/phrase.m4a" "$LOAD_CONNS" "$LOAD_SECONDS" 1)
say "$LOADL"
LOAD_RATE=$(field "$LOADL" rate)
stop_serve

# -- 5. (CLUSTER=1) conversion throughput: serve alone vs. + worker processes --
if [ "${CLUSTER:-0}" = 1 ]; then
  upload_all() {
    seq 1 "$N" | xargs -P "$PAR" -I{} curl -fs -o /dev/null \
      -F "audio_file=@$work/phrase.m4a" "http://127.0.0.1:$PORT/audio/user/1/phrase/{}"
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
  run_case() { # $1 = label
    upload_all
    wait_all_ready
    local t0 t1
    t0=$(now)
    seq 1 "$N" | xargs -P "$PAR" -I{} curl -fs -o /dev/null \
      "http://127.0.0.1:$PORT/audio/user/1/phrase/{}/mp3"
    t1=$(now)
    printf '| %s | %d mp3 conversions in %.2f s | %.1f conversions/s |\n' \
      "$1" "$N" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$N / ($t1 - $t0)" | bc -l)" >&2
  }
  start_serve "$work/d3" --workers 2
  run_case "serve node alone (2 local transcoders)"
  stop_serve
  for workers in 1 2; do
    CP=$(free_port)
    start_serve "$work/d3$workers" --workers 0 --set cluster.port="$CP"
    for w in $(seq "$workers"); do
      "$BIN" worker --join "127.0.0.1:$CP" --workers 2 --log-level warn \
        >"$work/w$w.log" 2>&1 &
      pids+=($!)
    done
    for _ in $(seq 100); do
      n=$(curl -fs "http://127.0.0.1:$PORT/metrics" \
          | awk '/^phonon_transcoders\{kind="remote"\}/ {print $2}')
      [ "${n:-0}" = "$((workers * 2))" ] && break
      sleep 0.1
    done
    run_case "HTTP-only serve node + $workers worker process(es), 2 transcoders each"
    stop_serve
  done
fi

# -- 6. GETs vs. nginx (bench/read_path.sh: phrase m4a, mp3, 60 s m4a, wav) ----
READ_PATH_OUT="$work/read_path" bench/read_path.sh "$BUILD" ${READ_PATH_OTHER:-} >&2
declare -A R
while read -r k v; do R[$k]=$v; done <"$work/read_path"
col() { echo "${R[$1]}" | cut -d' ' -f"$2"; }

# -- 7. memory around 32 concurrent 9 MiB WAV uploads --------------------------
MEM=$(bench/memory.sh "$BUILD" "${MEM_VARIANT:-default}")
say "$MEM"
LOAD_END=$(loadavg)

# -- the table -------------------------------------------------------------------
# row TITLE PHONON BASELINE RATIO_EXPR OP TARGET UNIT
# RATIO_EXPR: "p/b" or "b/p"; OP: ge or le (ratio vs target).
row() {
  awk -v t="$1" -v p="$2" -v b="$3" -v how="$4" -v op="$5" -v tg="$6" -v u="$7" '
  function num(v) { return v >= 100 ? sprintf("%.0f", v) : sprintf("%.3g", v) }
  BEGIN {
    r = (how == "p/b") ? p / b : b / p
    met = (op == "ge") ? (r >= tg) : (r <= tg)
    printf "| %s | %s%s | %s%s | %.2f | %s %s | %s |\n", t, num(p), u, num(b), u, r,
      (op == "ge" ? "≥" : "≤"), tg, (met ? "yes" : "**no**")
  }'
}
abs_row() { # TITLE VALUE TARGET
  awk -v t="$1" -v v="$2" -v tg="$3" 'BEGIN {
    printf "| %s | %.1f MiB | – | – | ≤ %s MiB | %s |\n", t, v, tg, (v <= tg ? "yes" : "**no**")
  }'
}
IDLE=$(field "$MEM" idle_mib)
PEAK=$(field "$MEM" peak_mib)
AFTER=$(field "$MEM" after3_mib)
C=${CONNS:-64}
DECODE_LIMIT=$(echo "2 * 1000 / $DEC_MS" | bc -l)

echo
echo "bench: $(date -u '+%F %T') UTC, $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(($(date +%s) - T_START)) s;" \
  "load average at start $LOAD_START, at end $LOAD_END"
echo
echo "| figure (3 s phrase unless said) | Phonon | baseline | ratio | target | met? |"
echo "|---|---|---|---|---|---|"
row "GET m4a req/s, $C conns (baseline: nginx, same bytes)" \
  "$(col phonon.m4a64 1)" "$(col nginx.m4a64 1)" p/b ge 1.2 ""
row "GET m4a p99, $C conns (nginx)" \
  "$(col phonon.m4a64 3)" "$(col nginx.m4a64 3)" p/b le 1.0 " ms"
row "GET m4a p50, 1 conn (nginx)" \
  "$(col phonon.m4a1 2)" "$(col nginx.m4a1 2)" p/b le 1.0 " ms"
row "GET 60 s m4a req/s, $C conns (nginx)" \
  "$(col phonon.long 1)" "$(col nginx.long 1)" p/b ge 1.0 ""
row "GET cached mp3 req/s, $C conns (nginx)" \
  "$(col phonon.mp3 1)" "$(col nginx.mp3 1)" p/b ge 1.0 ""
row "upload → ready p50 (in-process libav decode, median)" \
  "$UP_MS" "$DEC_MS" p/b le 3.0 " ms"
row "upload → ready p50: ffmpeg CLI per file (median) / Phonon" \
  "$UP_MS" "$FF_MS" b/p ge 18 " ms"
row "first GET mp3 p50 (bare libmp3lame encode of the master, in-process, median)" \
  "$MP3_MS" "$ENC_MS" p/b le 1.2 " ms"
row "ready/s under $LOAD_CONNS-conn upload load (2 cores × 1/decode)" \
  "$LOAD_RATE" "$DECODE_LIMIT" p/b ge 0.7 "/s"
abs_row "RSS idle" "$IDLE" 30
abs_row "RSS peak, 32 concurrent 9 MiB WAV uploads until ready" "$PEAK" 128
abs_row "RSS 3 s after those are ready and deleted, minus idle" \
  "$(echo "$AFTER - $IDLE" | bc -l)" 16
