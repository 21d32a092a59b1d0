#!/usr/bin/env bash
# Run the test suite, building the environment first if it is missing (tools/setup_env.sh).
#   tools/test.sh          the fast tier: every test not marked slow (a few minutes)
#   tools/test.sh --all    everything, slow end-to-end runs included (what CI runs)
# Other arguments go to pytest, e.g. tools/test.sh -k emsda
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tier=(-m "not slow")
args=()
for arg in "$@"; do
  if [ "$arg" = --all ]; then tier=(); else args+=("$arg"); fi
done
bash "$repo/tools/setup_env.sh"
cd "$repo"
exec .venv/bin/python -m pytest "${tier[@]}" "${args[@]}"
