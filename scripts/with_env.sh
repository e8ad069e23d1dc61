#!/usr/bin/env bash
# Run a command in this repository's environment (after `bash scripts/setup.sh`):
#
#   scripts/with_env.sh python -m pytest test -q
#   scripts/with_env.sh amodal-ros --help
#   scripts/with_env.sh bash            # an interactive shell with everything set
#
# Sets: the .venv (PATH, VIRTUAL_ENV), the colcon install prefix of amodal_ros
# (AMENT_PREFIX_PATH, CMAKE_PREFIX_PATH, PYTHONPATH, LD_LIBRARY_PATH, PATH), and for the ROS
# wheels RMW_IMPLEMENTATION=rmw_fastrtps_cpp. The variables are set explicitly instead of
# sourcing install/setup.sh, whose scripts are not `set -u` safe and, for the wheels, would also
# chain the wheels' build-machine prefix /opt/python/cp311-cp311.
#
# DDS discovery is limited to this host unless the caller already chose otherwise
# (ROS_AUTOMATIC_DISCOVERY_RANGE on Jazzy and later, ROS_LOCALHOST_ONLY on Humble). To talk
# to other machines: ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET scripts/with_env.sh ...
#
# PYTHONSAFEPATH=1: Python (>= 3.11) does not put the current directory / script directory
# first on sys.path. Without it, `python -c ...` or `python -m pytest` run from the repository
# root would import the *source* amodal_ros/ (which lacks the generated amodal_ros.msg) instead
# of the install prefix's amodal_ros (symlinks to the same sources + amodal_ros.msg). Export
# PYTHONSAFEPATH= (empty) to turn it off for scripts that import modules next to themselves.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
PREFIX="$REPO/install/amodal_ros"

if [[ $# -eq 0 ]]; then
  echo "usage: scripts/with_env.sh COMMAND [ARGS...]" >&2
  exit 2
fi
if [[ ! -x "$VENV/bin/python" || ! -d "$PREFIX" ]]; then
  echo "with_env.sh: $VENV or $PREFIX missing; run: bash $REPO/scripts/setup.sh" >&2
  exit 1
fi

prepend() {  # prepend VAR DIR: put DIR first in the path list VAR, without duplicates
  local var="$1" dir="$2" cur="${!1:-}"
  cur=":${cur}:"
  cur="${cur//:${dir}:/:}"
  cur="${cur#:}"
  cur="${cur%:}"
  export "$var=${dir}${cur:+:${cur}}"
}

# The virtualenv (same effect as `source .venv/bin/activate`, without its shell functions).
export VIRTUAL_ENV="$VENV"
prepend PATH "$VENV/bin"
unset PYTHONHOME

# ROS base: the wheels live in the venv prefix; an apt ROS is expected to be sourced already.
if [[ -n "${ROS_DISTRO:-}" && -d "/opt/ros/${ROS_DISTRO}" ]]; then
  :
else
  prepend AMENT_PREFIX_PATH "$VENV"
  prepend CMAKE_PREFIX_PATH "$VENV"
  prepend LD_LIBRARY_PATH "$VENV/lib"
  export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
fi

# The amodal_ros install prefix (isolated colcon layout).
site=""
for d in "$PREFIX"/lib/python3*/site-packages "$PREFIX"/lib/python3*/dist-packages "$PREFIX"/local/lib/python3*/dist-packages; do
  if [[ -d "$d/amodal_ros" ]]; then site="$d"; break; fi
done
if [[ -z "$site" ]]; then
  echo "with_env.sh: no amodal_ros Python package under $PREFIX; run: bash $REPO/scripts/setup.sh" >&2
  exit 1
fi
prepend AMENT_PREFIX_PATH "$PREFIX"
prepend CMAKE_PREFIX_PATH "$PREFIX"
prepend PYTHONPATH "$site"
prepend LD_LIBRARY_PATH "$PREFIX/lib"
prepend PATH "$PREFIX/lib/amodal_ros"
export PYTHONSAFEPATH="${PYTHONSAFEPATH-1}"

# Discovery on this host only, unless already chosen.
if [[ -z "${ROS_AUTOMATIC_DISCOVERY_RANGE:-}" && -z "${ROS_LOCALHOST_ONLY:-}" ]]; then
  if [[ "${ROS_DISTRO:-}" == "humble" ]]; then
    export ROS_LOCALHOST_ONLY=1
  else
    export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
  fi
fi

exec "$@"
