#!/usr/bin/env bash
# The GPU check: every GPU figure in the README and bench/RESULTS.md comes from this script.
# A session has 15 minutes of device time, start-up (a minute or more) included, one command
# at most 10, and a machine left idle 30 s is given back: plan one call, the wanted-most steps
# (timeouts 150 + 270 s, plus about 40 s of wheels and imports), through the device tool:
#   run(command='STEPS="depth eager" bash bench/gpu_check.sh', carry=[".whl"], timeout_s=600)
# and `compile` (420 s) or `cache` (420 s) in a later session's call. Leave OUT alone there:
# the device tool sets $OUT, and only what is under it comes back. Each step has its own
# timeout and writes its JSON as it goes (bench: after every timed round, the last one too),
# so a step cut short keeps what it measured. $OUT holds few files (the device returns 8):
# the JSONs, steps.log and log.txt (every step's output); the compile caches go to a fresh
# folder under $TMPDIR (mktemp -d).
#
# The wheels the GPU machine lacks travel in .whl/ (how to fetch them: scripts/gpu_site.sh).
# The working tree and the carried paths travel together, 64 MiB at most: the tracked files
# are about 61 MiB (the embedded models 59), the wheels 23 MB, so move
# amodal_ros/models/embedded/student1_32x64/ (20.5 MB, which no GPU step reads) out of the
# tree for the call and back after it (`du -cb $(git ls-files) .whl/*.whl | tail -1` says
# where you stand).
# Plumbing check on a CPU with the tiny model (what CI-like machines can run):
#   STEPS="depth eager compile cache" DEVICE=cpu CHECKPOINT=tiny DTYPE=float32 HEIGHT=32 \
#     WIDTH=64 OUT=/tmp/gpu_out scripts/with_env.sh bash bench/gpu_check.sh
#
# Steps: depth: Depth Anything V2 per frame, eager and compiled, batch 1 and 8
# (bench/bench_depth.py; DEPTH_SIZES, default vits: the goal's); eager: `amodal-ros bench`
# (reference, default, fast, realtime with and without stage 2's student, UNet fp8 with
# torchao's fp8 matmuls on Hopper, floor, first-window times, peak memory); compile: default
# against `UNet compile` (CUDA graphs), one object per UNet call (one graph to compile); cache:
# the first window of a cold and of a warm start (bench/bench_compile_cache.py).
set -uo pipefail
OUT=${OUT:-gpu_out}
STEPS=${STEPS:-depth eager}
DEVICE=${DEVICE:-cuda}
CHECKPOINT=${CHECKPOINT:-random-full-size}
DTYPE=${DTYPE:-float16}
HEIGHT=${HEIGHT:-256}
WIDTH=${WIDTH:-512}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/steps.log"; }
wanted() { [[ " $STEPS " == *" $1 "* ]]; }
# each step's own output, appended to one file and shown when the step ends
run_step() {
  local name=$1 seconds=$2
  shift 2
  log "$name: start (timeout $seconds s)"
  echo "===== $name" >> "$OUT/log.txt"
  timeout "$seconds" "$@" >> "$OUT/log.txt" 2>&1
  log "$name: exit $?"
}

# environment: carried wheels into .site (none needed where the packages are installed)
source scripts/gpu_site.sh
# a fresh folder of this user's (a fixed /tmp name lets another user plant code in the cache)
export AMODAL_ROS_ENGINE_CACHE=${AMODAL_ROS_ENGINE_CACHE:-$(mktemp -d)}
log "steps: $STEPS; environment: $(python3 -c 'import json, platform, torch
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
print(json.dumps({"python": platform.python_version(), "torch": torch.__version__,
                  "cuda": torch.version.cuda, "gpu": gpu}))')"
BENCH=(python3 -m amodal_ros.cli.main bench --checkpoint "$CHECKPOINT" --device "$DEVICE"
  --dtype "$DTYPE" --height "$HEIGHT" --width "$WIDTH" --windows 1 --no-progress --overwrite
  --skip "default, 1 object per call" "preset balanced")

if wanted depth; then
  run_step depth 150 python3 bench/bench_depth.py --device "$DEVICE" --dtype "$DTYPE" \
    --sizes ${DEPTH_SIZES:-vits} --out "$OUT/depth.json"
fi
if wanted eager; then  # with stage 2's student beside realtime: what completions add
  run_step eager 270 "${BENCH[@]}" --completion-checkpoint "$CHECKPOINT" \
    --out "$OUT/bench.json"
fi
if wanted compile; then  # the eager default beside it, for the ratio within one run
  run_step compile 420 "${BENCH[@]}" --compile --max-batch-objects 1 --skip reference \
    "preset fast" "preset realtime" "UNet fp8" "UNet onnxruntime" "default, 4 objects per call" \
    "preset balanced" --out "$OUT/bench_compile.json"
fi
if wanted cache; then  # a node's second start (the engine cache's compiled kernels)
  run_step cache 420 python3 bench/bench_compile_cache.py --checkpoint "$CHECKPOINT" \
    --device "$DEVICE" --dtype "$DTYPE" --objects 3 --out "$OUT/compile_cache.json"
fi
log "done: results in $OUT"
