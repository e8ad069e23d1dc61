# Sourced by the scripts that run on the GPU machine (bench/gpu_check.sh, scripts/train_on_gpu.sh),
# in the project root: that machine has torch but lacks diffusers (and may need a newer
# transformers), and reaches no package index, so they travel as wheels in .whl/
# (docs/gpu.md). Fetch them on a machine with internet, from the project root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl diffusers==0.42.1 transformers==5.24.0 importlib_metadata torchao==0.18.0
# Where the packages are installed (a CPU plumbing check under scripts/with_env.sh) and no
# .whl/ is there, this only sets the variables. The wheels unpack into .site/ (git-ignored:
# a rehearsal here would otherwise send 100 MB with the next device call).
if ls .whl/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target .site .whl/*.whl || { echo "wheel install failed" | tee -a "${OUT:-.}/steps.log" >&2; exit 3; }
  export PYTHONPATH=$PWD/.site${PYTHONPATH:+:$PYTHONPATH}
fi
# the source tree last: an installed amodal_ros (scripts/with_env.sh's) comes first
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD
export PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
# a missing wheel is one clear line now, not every step failing on its import
python3 -c "import diffusers, transformers, amodal_ros" 2>/dev/null || {
  echo "diffusers, transformers or amodal_ros cannot be imported: carry the wheels in .whl/" \
    "(the pip download line above)" | tee -a "${OUT:-.}/steps.log" >&2
  exit 3
}
