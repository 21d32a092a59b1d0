#!/usr/bin/env bash
# Run the test suite, building the environment first if it is missing (tools/setup_env.sh).
# Extra arguments go to pytest, e.g. tools/test.sh -k emsda
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/tools/setup_env.sh"
cd "$repo"
exec .venv/bin/python -m pytest "$@"
