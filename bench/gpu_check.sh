#!/usr/bin/env bash
# The whole GPU check in one go (about 8 minutes on an H200 before compiled models compiled
# every batch size at their first window; steps 3 and 4 now compile 3 sizes where they
# compiled 1, not yet timed: if one 600-s device call is too short, run steps 3-5 in a second
# call by commenting out steps 2 and 2b): every GPU figure in the README and
# bench/RESULTS.md comes from this script. Each step has its own timeout and writes its result
# to $OUT as soon as it ends, so a step that runs out of time loses only itself.
#
# The wheels the GPU machine lacks travel in .whl/ (how to fetch them: scripts/gpu_site.sh).
# On the GPU machine, in the project root (with .whl/ beside the code):
#   OUT=gpu_out bash bench/gpu_check.sh
# Plumbing check on a CPU with the tiny model (what CI-like machines can run):
#   DEVICE=cpu CHECKPOINT=tiny DTYPE=float32 HEIGHT=32 WIDTH=64 OUT=/tmp/gpu_out \
#     scripts/with_env.sh bash bench/gpu_check.sh
#
# Steps: 1 environment; 2 `amodal-ros bench` (reference, default, fast, realtime, UNet fp8 with
# torchao's fp8 matmuls on Hopper, floor, first-window times, peak memory), 2b realtime with
# and without stage 2's student (completions); 3 the same with torch.compile (CUDA graphs); 4 compile
# cache: first window of a cold and of a warm start (bench/bench_compile_cache.py); 5 Depth
# Anything V2 ViT-S and ViT-L per frame, eager and compiled (bench/bench_depth.py).
set -uo pipefail
OUT=${OUT:-gpu_out}
DEVICE=${DEVICE:-cuda}
CHECKPOINT=${CHECKPOINT:-random-full-size}
DTYPE=${DTYPE:-float16}
HEIGHT=${HEIGHT:-256}
WIDTH=${WIDTH:-512}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/steps.log"; }

# 1. environment: carried wheels into .site (none needed where the packages are installed)
source scripts/gpu_site.sh
export AMODAL_ROS_ENGINE_CACHE=${AMODAL_ROS_ENGINE_CACHE:-$OUT/engine_cache}
python3 - > "$OUT/environment.json" <<'EOF'
import json, platform, torch
info = {"python": platform.python_version(), "torch": torch.__version__,
        "cuda": torch.version.cuda, "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}
print(json.dumps(info))
EOF
log "environment: $(cat "$OUT/environment.json")"
BENCH=(python3 -m amodal_ros.cli.main bench --checkpoint "$CHECKPOINT" --device "$DEVICE"
  --dtype "$DTYPE" --height "$HEIGHT" --width "$WIDTH" --windows 2 --no-progress
  --skip "default, 1 object per call" "preset balanced")

# 2. eager: the full-quality default, fast and realtime presets, and the floor
log "bench (eager)"
timeout 240 "${BENCH[@]}" --out "$OUT/bench.json" > "$OUT/bench.md" 2>&1
log "bench (eager) exit $?"

# 2b. eager: realtime with and without stage 2's student (what publishing completions adds)
log "bench (completions)"
timeout 180 "${BENCH[@]}" --completion-checkpoint "$CHECKPOINT" --skip reference default \
  "default, 1 object per call" "default, 4 objects per call" "preset balanced" "preset fast" \
  "UNet fp8" "UNet onnxruntime" floor --out "$OUT/bench_completions.json" > "$OUT/bench_completions.md" 2>&1
log "bench (completions) exit $?"

# 3. torch.compile, static shapes, CUDA graphs (mode reduce-overhead on a GPU)
log "bench (compile)"
timeout 420 "${BENCH[@]}" --compile --skip reference "preset fast" "default, 1 object per call" \
  "preset balanced" --out "$OUT/bench_compile.json" > "$OUT/bench_compile.md" 2>&1
log "bench (compile) exit $?"

# 4. the compile cache: a node's second start (the cache filled by step 3 is left alone)
log "compile cache"
timeout 420 python3 bench/bench_compile_cache.py --checkpoint "$CHECKPOINT" --device "$DEVICE" \
  --dtype "$DTYPE" --objects 4 --out "$OUT/compile_cache.json" > "$OUT/compile_cache.log" 2>&1
log "compile cache exit $?"

# 5. Depth Anything V2 per frame: eager against compile (CUDA graphs), batch 1 and 8
log "depth"
timeout 150 python3 bench/bench_depth.py --device "$DEVICE" --dtype "$DTYPE" \
  --sizes ${DEPTH_SIZES:-vits vitl} --out "$OUT/depth.json" > "$OUT/depth.log" 2>&1
log "depth exit $?"
log "done: results in $OUT"
