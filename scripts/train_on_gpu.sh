#!/usr/bin/env bash
# Train the embedded model's stage-1 one-step student on the GPU machine in one go, and pack
# it to come back (docs/training.md, "Training on the GPU machine"). A fresh UNet of WIDTH,
# with HEADS-head attention across space and time (causal with CAUSAL=1), on the embedded
# autoencoder learns the ground truth of fresh synthetic windows, a batch of BATCH per step
# rendered by WORKERS processes (the CPU's 2 cores saw 1500 distinct windows in 6000 steps;
# this sees BATCH new ones every step). Training ends at STEPS or, where fewer fit in MINUTES
# (`distill --minutes`: planned at the pace of its first steps), at the steps that fit, its
# cosine ending there too; what it is best carried on from goes into $OUT/packed, with the
# logs in $OUT (`carry pack --within`: the final checkpoint as run.json + fp16 shards under
# 16 MiB; a run killed past MINUTES, its state to continue exactly elsewhere where it fits
# RETURN_MIB, as a shipped-size student's does, else its newest checkpoint: the default
# 96-wide student's state, about 130 MiB, does not).
#
# The wheels the GPU machine lacks travel in .whl/ (how to fetch them: scripts/gpu_site.sh).
# On the GPU machine, in the project root:
#   OUT=gpu_out bash scripts/train_on_gpu.sh
# Through the device tool, which sets $OUT and returns what is under it:
#   run(command="bash scripts/train_on_gpu.sh", carry=[".whl"], timeout_s=600)
# Back here, rebuild the run folder, then judge it as any student (docs/training.md):
#   scripts/with_env.sh python -m amodal_ros.train.carry unpack gpu_out/packed train_out/student1_gpu
#   scripts/with_env.sh amodal-ros eval --split val --clips 20 --checkpoint '' \
#     --student-checkpoint train_out/student1_gpu/final --completion-checkpoint embedded
# PLAN=runs/NAME runs a carried run's plan instead (its distill arguments from plan.json, from
# its start, with this machine's WORKERS and MIXED), to be judged by the plan's rule back here
# (runs/README.md: move the carried weights out of the tree for the device calls first). A plan
# that reuses windows (--sample-reuse above 1) renders them in the training process: workers
# render a fresh window for every batch item; a plan runs at its own length, killed at
# MINUTES, to be continued here. One run per machine: two side by side (session
# 30) shared its 16 cores and each ran at a fraction of its speed. Its state comes back as a
# carried run's (runs/NAME, `bash runs/run.sh NAME` continues it).
# Plumbing check on a CPU (what CI-like machines can run; about a minute):
#   WIDTH=32 STEPS=4 BATCH=2 WORKERS=2 MIXED=no OUT=/tmp/gpu_train \
#     scripts/with_env.sh bash scripts/train_on_gpu.sh
set -uo pipefail
OUT=${OUT:-gpu_out}
WIDTH=${WIDTH:-96}        # the UNet's first block (64: the shipped student; 96: 11.5 M parameters)
HEADS=${HEADS:-4}         # space-time attention after the mid block (0: none; docs/training.md)
CAUSAL=${CAUSAL:-1}       # 1: it sees earlier frames only, as the live node's newest frame does
BATCH=${BATCH:-32}        # windows per step
STEPS=${STEPS:-1500}      # at most. Rendering a 128x256 window takes 0.060 s on one core, so
                          # 14 workers allow about 7 steps of 32/s; the H200 trained a batch
                          # of 32 at 0.89 steps/s beside another run (session 30): at that
                          # pace about 400 steps fit in MINUTES, and the run ends there
LR=${LR:-5e-4}
WARMUP=${WARMUP:-100}     # steps (the peak: 0.87 of LR at step 100 of a run planned to 400)
MINUTES=${MINUTES:-8}     # the device session's 15 minutes hold start-up, this, and the return
MIXED=${MIXED:-bf16}
WORKERS=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
# the full run folder stays on the machine (only $OUT returns), in this user's home: a fixed
# /tmp name could be another user's, whose planted state this run would resume
RUN=${RUN:-$HOME/.cache/amodal_ros/gpu_run}
RESUME=${RESUME:-0}       # 1: continue the run in $RUN (a warm machine keeps it); 0: start afresh
PLAN=${PLAN:-}            # runs/NAME: that run's plan in place of the student above
RETURN_MIB=${RETURN_MIB:-62}  # of the 64 MiB the device tool returns, beside the two logs
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
log() { echo "[$(date +%T)] $*" | tee -a "$OUT/steps.log"; }
[[ "$RESUME" == 1 ]] || rm -rf "$RUN"
rm -rf "$OUT/packed"

source scripts/gpu_site.sh
environment=$(python3 -c "import torch; print(torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')" 2>&1)
if [[ -n "$PLAN" ]]; then
  # a plan that does not load stops here; an empty list would train distill's defaults
  plan_args=$(python3 -m amodal_ros.train.judge "$PLAN" --distill-args 2>> "$OUT/steps.log") \
    || { log "$PLAN/plan.json does not load"; exit 3; }
  mapfile -t student <<< "$plan_args"
  reuse=1
  for i in "${!student[@]}"; do
    case "${student[i]}" in
      --sample-reuse) reuse=${student[i + 1]:-1} ;;
      --sample-reuse=*) reuse=${student[i]#*=} ;;
    esac
  done
  if [[ "$reuse" != 1 && "$WORKERS" != 0 ]]; then
    log "the plan reuses windows (--sample-reuse $reuse): rendered in the training process, not by $WORKERS workers"
    WORKERS=0
  fi
  log "environment: $environment; the plan of $PLAN: ${student[*]}; $WORKERS workers, $MIXED, $MINUTES min"
else
  student=(--teacher embedded --distill-target truth --fresh-unet --unet-width "$WIDTH"
    --space-time-heads "$HEADS" $([[ "$CAUSAL" == 1 && "$HEADS" != 0 ]] && echo --space-time-causal)
    --batch-size "$BATCH" --sample-reuse 1 --steps "$STEPS" --minutes "$MINUTES" --lr "$LR"
    --warmup-steps "$WARMUP" --seed 61 --save-every 100)
  log "environment: $environment; width $WIDTH, $HEADS space-time heads (causal $CAUSAL), batch $BATCH, steps $STEPS, lr $LR, $WORKERS workers, $MIXED, $MINUTES min"
fi

log "train"
# the student ends itself within MINUTES; the kill, a little later, is for a plan or a hang
timeout --kill-after=30 $(( MINUTES * 60 + 20 )) python3 -m amodal_ros.cli.main distill "${student[@]}" \
  --data-workers "$WORKERS" --log-every 10 --mixed-precision "$MIXED" --no-progress \
  --out "$RUN" > "$OUT/train.log" 2>&1
trained=$?
log "train exit $trained (124, 137: stopped at $MINUTES min)"
[[ $trained == 0 || $trained == 124 || $trained == 137 ]] || exit 5

log "pack"
python3 -m amodal_ros.train.carry pack --within "$RETURN_MIB" "$RUN" "$OUT/packed" >> "$OUT/steps.log" 2>&1
packed=$?
log "pack exit $packed"
[[ $packed == 0 ]] || exit 6
log "done: $OUT"
