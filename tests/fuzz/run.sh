#!/usr/bin/env bash
# Runs fuzz targets of a built fuzz configuration, each for SECONDS, on a
# scratch copy of its committed seeds (the repository is never written).
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
# TARGET is a name such as `multipart` (binary BUILD_DIR/multipart_fuzzer,
# seeds tests/fuzz/corpus/multipart/, optional dictionary
# tests/fuzz/multipart.dict); without one, every built target runs.
# Exits non-zero when any target crashed, leaked, timed out or ran out of
# memory; the input that did it is in BUILD_DIR/fuzz-work/TARGET/crashes/
# (the full log beside it, in log.txt).
# Extra libFuzzer flags: FUZZ_FLAGS (e.g. -runs=10000000); scratch folder:
# FUZZ_WORK (default BUILD_DIR/fuzz-work).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(cd "${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}" && pwd)"
seconds="${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}"
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$here"/*_fuzzer.cpp; do
    n="$(basename "$f" .cpp)"
    targets+=("${n%_fuzzer}")
  done
fi

failed=()
for t in "${targets[@]}"; do
  bin="$dir/${t}_fuzzer"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin is missing (build with tests/fuzz/build.sh $dir)" >&2
    failed+=("$t")
    continue
  fi
  work="${FUZZ_WORK:-$dir/fuzz-work}/$t"
  mkdir -p "$work/corpus" "$work/crashes"
  # Seeds are merged into the scratch corpus, which keeps what earlier runs
  # found.
  if [ -d "$here/corpus/$t" ]; then
    cp -r "$here/corpus/$t/." "$work/corpus/"
  fi
  flags=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10
         -rss_limit_mb=2048 -artifact_prefix="$work/crashes/")
  if [ -f "$here/$t.dict" ]; then
    flags+=(-dict="$here/$t.dict")
  fi
  echo "fuzz: $t for ${seconds}s"
  # shellcheck disable=SC2086
  if ! "$bin" "${flags[@]}" ${FUZZ_FLAGS:-} "$work/corpus" \
       >"$work/log.txt" 2>&1; then
    tail -n 60 "$work/log.txt"
    echo "fuzz: $t FAILED; input saved in $work/crashes/" >&2
    failed+=("$t")
    continue
  fi
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)|^Done" \
    "$work/log.txt" | sed "s/^/fuzz: $t: /"
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
