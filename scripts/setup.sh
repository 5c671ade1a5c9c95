#!/usr/bin/env bash
# Installs every Debian package that Phonon's build, tests and a local run
# need. Idempotent: only packages that are missing are installed, and apt's
# package lists are refreshed only when something has to be installed.
set -euo pipefail

#   scripts/setup.sh          everything: build, tests, a local run
#   scripts/setup.sh build    only what compiling needs (docker/Dockerfile)
build_packages=(
  # toolchain
  build-essential cmake pkg-config git ca-certificates
  # libraries Phonon links
  libcaf-dev libboost-dev libavformat-dev libavcodec-dev libavutil-dev
  libswresample-dev libsqlite3-dev libmysqlcppconn-dev libspdlog-dev
  libfmt-dev libyaml-cpp-dev nlohmann-json3-dev catch2
  # tokens and signed links: cpp-jwt (header-only) on OpenSSL; cluster TLS
  # also builds on libssl-dev (CAF's OpenSSL module is in libcaf-dev)
  libcpp-jwt-dev libssl-dev
  # S3 (issue 11): libcurl is the transport; the request signer is Phonon's
  # own on libssl-dev's libcrypto (README.md, "S3")
  libcurl4-openssl-dev
)
test_packages=(
  # tools the tests use: real audio, a real MariaDB, HTTP from the shell
  ffmpeg espeak-ng mariadb-server mariadb-client curl procps iproute2
  # the openssl CLI: scripts/cluster-certs.sh and the cluster TLS tests
  openssl
  # benchmarks (bench/run.sh): HTTP load generator, bc for the arithmetic;
  # the allocators bench/memory.sh compares (LD_PRELOAD)
  wrk bc libjemalloc2 libmimalloc2.0
  # docker/ files are validated with `docker-compose config` (no engine here)
  docker-compose
  # the monitoring profile: promtool (in Debian's prometheus package) checks
  # docker/prometheus/prometheus.yml and a real /metrics scrape; the check
  # scripts read YAML and JSON with Python
  prometheus python3 python3-yaml
  # a real browser plays the served audio
  chromium
  # fuzz targets (tests/fuzz/): libFuzzer and its ASan/UBSan runtimes
  clang-14 libclang-rt-14-dev
)

packages=("${build_packages[@]}")
if [ "${1:-all}" != "build" ]; then
  packages+=("${test_packages[@]}")
fi

missing=()
# The OpenAPI file is linted with an npm package; Debian's npm is installed
# only when the machine has no npm of its own (its node would conflict).
if [ "${1:-all}" != "build" ] && ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts mariadb on install where it can; Phonon's tests run their
# own private server, so the system one is left alone.
echo "setup: done"
