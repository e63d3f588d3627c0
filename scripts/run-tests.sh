#!/usr/bin/env bash
# Set up the environment (if needed) and run the whole test suite.
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
exec python -m pytest "$@"
