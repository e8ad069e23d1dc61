#!/usr/bin/env bash
# Start or continue student1_batch4 (README.md beside this: why, its rule, where its steps ran)
# from the project root: its carried state here is unpacked into $OUT first when $OUT has
# none. Before a session ends, carry its last save back here:
#   scripts/with_env.sh python -m amodal_ros.train.carry pack --state "$OUT" runs/student1_batch4
set -euo pipefail
HERE=$(dirname "$0")
OUT=${OUT:-train_out/student1_batch4}
if [[ ! -f "$OUT/state/step.json" && -f "$HERE/run.json" ]]; then
  scripts/with_env.sh python -m amodal_ros.train.carry unpack "$HERE" "$OUT"
fi
OMP_NUM_THREADS=2 exec nice -n 19 scripts/with_env.sh amodal-ros distill \
  --teacher amodal_ros/models/embedded/student1 --distill-target truth --steps 1500 \
  --batch-size 4 --lr 1e-4 --warmup-steps 100 --sample-reuse 4 --seed 53 --save-every 100 \
  --out "$OUT" --no-progress
