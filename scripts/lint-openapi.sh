#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly CLI (rules: redocly.yaml).
#
# The CLI is a pinned devDependency (package.json, package-lock.json); it is
# installed from the lock file only when it is missing. Exits non-zero when
# the install fails or the lint reports any problem.
set -euo pipefail

cd "$(dirname "$0")/.."

if [[ ! -x node_modules/.bin/redocly ]]; then
  npm ci --no-audit --no-fund
fi

# Offline and quiet: no telemetry, no update or Node.js notices.
export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export REDOCLY_SUPPRESS_NOTIFICATIONS=true

npx --no-install redocly lint --config redocly.yaml docs/openapi.yaml
