#!/usr/bin/env bash
# The main job: build the environment if it is missing (tools/setup_env.sh), generate the
# synthetic COCO-format pose set, train Poseur on it with MMPose's runner, print the COCO AP
# table and write pictures and curves to the work directory (projects/synthetic_pose/README.md).
# Extra arguments go to the demo, python -m projects.synthetic_pose.demo, e.g.
# tools/demo.sh --epochs 2
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$repo/tools/setup_env.sh"
cd "$repo"
exec "$repo/.venv/bin/python" -W ignore -m projects.synthetic_pose.demo "$@"
