#!/usr/bin/env bash
# The allocator study of bench/README.md ("Memory returned"): bench/memory.sh
# once per variant, REPEAT rounds interleaved (so a change in the machine's
# background load spreads over all variants), one Markdown row per run.
#   bench/malloc_study.sh [BUILD_DIR] [VARIANT...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(glibc-dynamic default glibc-arena2
  glibc-mmap128k glibc-tuned glibc-trim jemalloc jemalloc-bg mimalloc)
REPEAT=${REPEAT:-2}
echo "| variant | idle MiB | peak MiB | after 3 s MiB | after 3 s − idle | after 10 s − idle | load avg |"
echo "|---|---|---|---|---|---|---|"
for _ in $(seq "$REPEAT"); do
  for v in "${variants[@]}"; do
    line=$(bench/memory.sh "$BUILD" "$v")
    echo "$line" | tr ' ' '\n' | awk -F= -v la="$(cut -d' ' -f1 /proc/loadavg)" '
      {f[$1] = $2}
      END {printf "| %s | %s | %s | %s | %.1f | %.1f | %s |\n", f["variant"],
        f["idle_mib"], f["peak_mib"], f["after3_mib"],
        f["after3_mib"] - f["idle_mib"], f["after10_mib"] - f["idle_mib"], la}'
  done
done
