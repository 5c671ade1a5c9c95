#!/usr/bin/env bash
# Memory of `phonon serve` around a burst of large uploads, loopback only,
# bounded loops:
#   bench/memory.sh [BUILD_DIR] [VARIANT]
# 1. idle: RSS 2 s after the server answers /healthz;
# 2. peak: 32 (UPLOADS) concurrent uploads of a 9 MiB WAV, each polled
#    until ready; RSS sampled every 20 ms, at least VmHWM at the end;
# 3. after: the recordings are deleted; RSS 3 s (and 10 s) later.
# RSS is summed over the server and its child processes (transcoder.isolate).
# VARIANT picks the allocator / malloc settings (bench/README.md, "Memory
# returned"): default (the binary's own: glibc, mmap threshold fixed at
# 1 MiB by app/allocator.cpp), glibc-dynamic (glibc's dynamic threshold, the
# default before 2026-12-03), glibc-arena2,
# glibc-mmap128k, glibc-mmap1m, glibc-tuned, glibc-trim (malloc_trim(0) every second from
# a preloaded thread), jemalloc, jemalloc-bg, mimalloc. Variants that preload
# an allocator need Debian's libjemalloc2 / libmimalloc2.0.
# Prints one line:
#   mem variant=V idle_mib=.. peak_mib=.. hwm_mib=.. after3_mib=.. after10_mib=.. retries=..
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
VARIANT=${2:-${VARIANT:-default}}
UPLOADS=${UPLOADS:-32}
BIN=$(realpath "$BUILD/phonon")
LIBDIR=/usr/lib/x86_64-linux-gnu
work=$(mktemp -d)
SPID=
sampler=
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# 9 MiB of WAV: 53.5 s of 44.1 kHz stereo s16 (a tone with noise, so that
# nothing compresses it away on the way).
ffmpeg -loglevel error -y -f lavfi \
  -i "sine=frequency=330:duration=53.5:sample_rate=44100" -f lavfi \
  -i "anoisesrc=duration=53.5:sample_rate=44100:amplitude=0.05" \
  -filter_complex "[0][1]amix=inputs=2,aformat=channel_layouts=stereo" \
  -c:a pcm_s16le "$work/big.wav"

envs=()
case "$VARIANT" in
  default) ;;
  glibc-dynamic) envs=(PHONON_MMAP_THRESHOLD=0) ;;
  glibc-arena2) envs=(PHONON_MMAP_THRESHOLD=0 MALLOC_ARENA_MAX=2) ;;
  glibc-mmap128k) envs=(MALLOC_MMAP_THRESHOLD_=131072) ;;
  glibc-mmap1m) envs=(MALLOC_MMAP_THRESHOLD_=1048576) ;;
  glibc-tuned) envs=(MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
                     MALLOC_TRIM_THRESHOLD_=131072) ;;
  glibc-trim)
    cc -shared -fPIC -O2 -o "$work/trim.so" bench/trim_preload.c -lpthread
    envs=(PHONON_MMAP_THRESHOLD=0 LD_PRELOAD="$work/trim.so" PHONON_TRIM_MS=1000) ;;
  jemalloc) envs=(LD_PRELOAD=$LIBDIR/libjemalloc.so.2) ;;
  jemalloc-bg) envs=(LD_PRELOAD=$LIBDIR/libjemalloc.so.2
                     MALLOC_CONF=background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0) ;;
  mimalloc) envs=(LD_PRELOAD=$LIBDIR/libmimalloc.so.2) ;;
  *) echo "unknown variant $VARIANT" >&2; exit 2 ;;
esac
for e in "${envs[@]}"; do
  case "$e" in LD_PRELOAD=*) [ -f "${e#LD_PRELOAD=}" ] \
    || { echo "memory.sh: ${e#LD_PRELOAD=} missing (scripts/setup.sh)" >&2; exit 1; } ;;
  esac
done

PORT=$(free_port)
mkdir -p "$work/d"
env ${envs[@]+"${envs[@]}"} "$BIN" serve --host 127.0.0.1 --port "$PORT" \
  --data-dir "$work/d" --log-level warn >"$work/serve.log" 2>&1 &
SPID=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null \
  || { echo "server did not start" >&2; cat "$work/serve.log" >&2; exit 1; }

rss_kib() { # RSS of the server and its children, KiB
  local total=0 p k v _
  for p in "$SPID" $(cat /proc/"$SPID"/task/*/children 2>/dev/null); do
    [ -r /proc/"$p"/status ] || continue
    while read -r k v _; do
      [ "$k" = VmRSS: ] && total=$((total + v))
    done </proc/"$p"/status
  done
  echo "$total"
}
hwm_kib() { awk '/^VmHWM:/ {print $2}' /proc/"$SPID"/status; }
mib() { echo "scale=1; $1 / 1024" | bc; }

sleep 2
idle=$(rss_kib)

# Sampler: every 20 ms, for at most 10 minutes.
( for _ in $(seq 30000); do rss_kib; sleep 0.02; done ) >"$work/rss" 2>/dev/null &
sampler=$!

upload() { # $1 = id; a 503 (queue full) is retried, bounded
  local code i
  for i in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: audio/wav' \
      --data-binary "@$work/big.wav" "http://127.0.0.1:$PORT/audio/user/1/phrase/$1")
    case "$code" in
      201|200) echo "$i"; return ;;
      503|429) sleep 0.2 ;;
      *) echo "upload $1: HTTP $code" >&2; echo 100; return 1 ;;
    esac
  done
  echo "upload $1: still refused" >&2; return 1
}
export -f upload
export work PORT
seq 1 "$UPLOADS" | xargs -P "$UPLOADS" -I{} bash -c 'upload {}' >"$work/tries"
for i in $(seq 1 "$UPLOADS"); do
  for _ in $(seq 1200); do
    curl -fs "http://127.0.0.1:$PORT/audio/user/1/phrase/$i" \
      | grep -q '"status":"ready"' && break
    sleep 0.05
  done
  curl -fs "http://127.0.0.1:$PORT/audio/user/1/phrase/$i" \
    | grep -q '"status":"ready"' || { echo "recording $i not ready" >&2; exit 1; }
done
kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; sampler=
# The sampler misses short peaks: the server's own high-water mark is the
# floor (it covers the main process only; children are in the samples).
hwm=$(hwm_kib)
peak=$(sort -n "$work/rss" | tail -1)
[ "$hwm" -gt "${peak:-0}" ] && peak=$hwm
retries=$(awk '{s += $1 - 1} END {print s + 0}' "$work/tries")

for i in $(seq 1 "$UPLOADS"); do
  curl -fs -o /dev/null -X DELETE "http://127.0.0.1:$PORT/audio/user/1/phrase/$i"
done
sleep 3
after3=$(rss_kib)
sleep 7
after10=$(rss_kib)
echo "mem variant=$VARIANT idle_mib=$(mib "$idle") peak_mib=$(mib "$peak")" \
  "hwm_mib=$(mib "$hwm") after3_mib=$(mib "$after3") after10_mib=$(mib "$after10")" \
  "retries=$retries"
