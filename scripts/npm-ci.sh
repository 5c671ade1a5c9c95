#!/usr/bin/env bash
# Installs the pinned npm devDependencies (package.json, package-lock.json:
# @redocly/cli for the OpenAPI lint, puppeteer-core for the browser tests,
# @20minutes/s3rver for the S3 tests)
# into node_modules with `npm ci`, unless node_modules already holds exactly
# what this lock file says.
#
# Idempotent and safe to run concurrently: a successful install records the
# lock file's SHA-256 in node_modules/.phonon-lock-sha256, and later runs
# compare against it (a changed lock file, e.g. after a merge, reinstalls).
# Concurrent runs (ctest -j, the Makefile and a test) wait for each other
# on a lock of this script, at most 10 minutes. Exits non-zero when npm is
# missing or the install fails.
set -euo pipefail

cd "$(dirname "$0")/.."

stamp=node_modules/.phonon-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)

installed() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]
}

if installed; then
  exit 0
fi

exec 9<"$0"
if ! flock -w 600 9; then
  echo "npm-ci.sh: another install held the lock for 10 minutes" >&2
  exit 1
fi
# The run that held the lock may have installed it meanwhile.
if installed; then
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "npm-ci.sh: npm is missing (scripts/setup.sh installs it)" >&2
  exit 1
fi

# puppeteer-core never downloads a browser (the tests use Debian's
# chromium); the variable keeps any optional download step off anyway.
PUPPETEER_SKIP_DOWNLOAD=1 timeout 600 npm ci --no-audit --no-fund
echo "$want" >"$stamp"
