#!/usr/bin/env bash
# Configures (once) and builds the clang/libFuzzer configuration.
#   tests/fuzz/build.sh BUILD_DIR
# JOBS (default: nproc) sets the parallelism; CMAKE_CXX_COMPILER_LAUNCHER
# from the environment (e.g. ccache) is honoured by CMake itself.
set -euo pipefail
src="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${1:?usage: build.sh BUILD_DIR}"
if [ ! -f "$dir/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$dir" -DPHONON_FUZZ=ON \
    -DCMAKE_CXX_COMPILER="${FUZZ_CXX:-clang++-14}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$dir" -j "${JOBS:-$(nproc)}"
