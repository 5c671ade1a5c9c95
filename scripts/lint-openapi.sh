#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly CLI (rules: redocly.yaml).
#
# The CLI is a pinned devDependency (package.json, package-lock.json),
# installed by scripts/npm-ci.sh (the one install path). Exits non-zero when
# the install fails or the lint reports any problem.
set -euo pipefail

cd "$(dirname "$0")/.."

./scripts/npm-ci.sh

# Offline and quiet: no telemetry, no update or Node.js notices.
export REDOCLY_TELEMETRY=off
export REDOCLY_SUPPRESS_UPDATE_NOTICE=true
export REDOCLY_SUPPRESS_NOTIFICATIONS=true

npx --no-install redocly lint --config redocly.yaml docs/openapi.yaml
