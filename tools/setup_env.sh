#!/usr/bin/env bash
# Build (or reuse) the poseur_mm virtual environment and link it as .venv in the checkout.
#
# The venv lives outside the checkout, keyed by the hash of requirements/lock.txt and this script,
# so fresh clones (CI) reuse it; a venv whose build did not finish is rebuilt. Built mmcv wheels
# are kept in a wheelhouse keyed by the torch version, because an mmcv built against another torch
# fails on import (C++ ABI).
#
# Environment:
#   POSEUR_ENV_HOME         where venvs and the wheelhouse live (default ~/.cache/poseur_mm)
#   POSEUR_MMCV_WHEELHOUSE  extra folder holding a prebuilt mmcv wheel (CI: ../shared/wheels)
#   PYTHON                  the interpreter to build the venv from (default python3.11)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lock="$repo/requirements/lock.txt"
env_home=${POSEUR_ENV_HOME:-$HOME/.cache/poseur_mm}
python=${PYTHON:-python3.11}

key=$(cat "$lock" "$repo/tools/setup_env.sh" | sha256sum | cut -c1-12)
venv="$env_home/venv-$key"

pins() {  # pins TAG: the requirement lines of the lock file carrying that tag ('' = untagged)
  if [ -z "$1" ]; then
    grep -E '^[A-Za-z]' "$lock" | grep -v '#' | tr -d ' ' || true
  else
    grep -E "^[A-Za-z].*# $1\$" "$lock" | sed 's/ *#.*//'
  fi
}

pin_of() { pins "$1" | grep -i "^$2==" | cut -d= -f3; }

link_venv() {
  ln -sfn "$venv" "$repo/.venv"
}

install_plugin() {
  # Editable install of this checkout; redone when the venv points at another clone.
  local where
  where=$(cd / && "$venv/bin/python" -c 'import poseur_mm, os; print(os.path.dirname(os.path.dirname(poseur_mm.__file__)))' 2>/dev/null || true)
  if [ "$where" != "$repo" ]; then
    echo "[setup] installing poseur_mm from $repo (editable)"
    "$venv/bin/pip" install --quiet --no-deps --no-build-isolation -e "$repo"
  fi
}

if [ -f "$venv/.complete" ]; then
  link_venv
  install_plugin
  exit 0
fi

start=$SECONDS
echo "[setup] building the environment in $venv (key $key)"
rm -rf "$venv"
mkdir -p "$env_home"
"$python" -m venv "$venv"
pip=("$venv/bin/pip" install --disable-pip-version-check -c "$lock")
py="$venv/bin/python"

"${pip[@]}" $(pins build)
"${pip[@]}" $(pins torch)
"${pip[@]}" $(pins '')
"${pip[@]}" --no-binary xtcocotools --no-build-isolation $(pins source)
"${pip[@]}" --no-deps $(pins no-deps)

# mmcv with compiled ops: a wheelhouse keyed by torch version, then POSEUR_MMCV_WHEELHOUSE,
# then a source build into the wheelhouse. A wheel that does not import is discarded, never
# replaced by mmcv-lite.
torch_version=$(pin_of torch torch)
mmcv_version=$(pin_of mmcv mmcv)
wheelhouse="$env_home/wheelhouse/torch-$torch_version-$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
mkdir -p "$wheelhouse"

mmcv_works() { "$py" -c 'import mmcv, mmcv.ops, mmcv._ext' >/dev/null 2>&1; }

try_mmcv_from() {
  [ -n "$1" ] && [ -d "$1" ] || return 1
  ls "$1"/mmcv-"$mmcv_version"-*.whl >/dev/null 2>&1 || return 1
  echo "[setup] trying mmcv $mmcv_version from $1"
  "${pip[@]}" --no-deps --no-index --find-links "$1" "mmcv==$mmcv_version" || return 1
  if mmcv_works; then
    # Keep a copy of a wheel that came from elsewhere, so later venvs need no external folder.
    [ "$1" = "$wheelhouse" ] || cp "$1"/mmcv-"$mmcv_version"-*.whl "$wheelhouse"/
    return 0
  fi
  echo "[setup] the mmcv wheel in $1 does not import against torch $torch_version; discarding it"
  "$venv/bin/pip" uninstall -y mmcv >/dev/null
  return 1
}

build_mmcv() {
  echo "[setup] building mmcv $mmcv_version with compiled ops (about 30 minutes on 2 cores)"
  local tmp
  tmp=$(mktemp -d)
  "$venv/bin/pip" download --no-deps --no-binary :all: -d "$tmp" "mmcv==$mmcv_version"
  tar -xzf "$tmp"/mmcv-"$mmcv_version".tar.gz -C "$tmp"
  # torch >= 2.10 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17.
  sed -i 's/-std=c++17/-std=c++20/g' "$tmp/mmcv-$mmcv_version/setup.py"
  MMCV_WITH_OPS=1 MAX_JOBS=$(nproc) "$venv/bin/pip" wheel --no-deps --no-build-isolation \
    -w "$wheelhouse" "$tmp/mmcv-$mmcv_version"
  rm -rf "$tmp"
}

if ! try_mmcv_from "$wheelhouse" && ! try_mmcv_from "${POSEUR_MMCV_WHEELHOUSE:-}"; then
  build_mmcv
  try_mmcv_from "$wheelhouse" || { echo "[setup] the freshly built mmcv does not import" >&2; exit 1; }
fi

"$venv/bin/pip" check || echo "[setup] pip check lists declared deps we install deliberately without (see lock.txt)"
touch "$venv/.complete"
link_venv
install_plugin
echo "[setup] environment ready in $((SECONDS - start)) s"
