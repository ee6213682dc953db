#!/usr/bin/env bash
# The test command: set up (idempotent), then run every tap test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm test
