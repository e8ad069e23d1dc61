#!/usr/bin/env bash
# Start or continue student1_batch4 (README.md beside this: why, its rule, where its steps
# ran). Its state carried here is unpacked into $OUT first when $OUT has none; a carried
# state ahead of $OUT's own is an error, not a silent step back. Before a session ends,
# carry its last save back here (and commit it):
#   scripts/with_env.sh python -m amodal_ros.train.carry pack --state "$OUT" runs/student1_batch4
set -euo pipefail
cd "$(dirname "$0")/../.."  # the project root
HERE=runs/student1_batch4
OUT=${OUT:-train_out/student1_batch4}
step_of() { scripts/with_env.sh python -c 'import json, sys; print(json.load(open(sys.argv[1]))["step"])' "$1"; }
if compgen -G "$HERE/weights-*.safetensors" > /dev/null && [[ ! -f "$HERE/run.json" ]]; then
  echo "$HERE has shards but no run.json: an interrupted pack; pack the run again" >&2
  exit 2
fi
if [[ -f "$HERE/run.json" ]]; then
  carried=$(step_of "$HERE/run.json")
  if [[ ! -f "$OUT/state/step.json" ]]; then
    scripts/with_env.sh python -m amodal_ros.train.carry unpack "$HERE" "$OUT"
  elif (( $(step_of "$OUT/state/step.json") < carried )); then
    echo "$OUT is at step $(step_of "$OUT/state/step.json"), behind the state carried in $HERE" \
      "(step $carried): remove $OUT to continue from the carried state" >&2
    exit 2
  fi
fi
OMP_NUM_THREADS=2 exec nice -n 19 scripts/with_env.sh amodal-ros distill \
  --teacher amodal_ros/models/embedded/student1 --distill-target truth --steps 1500 \
  --batch-size 4 --lr 1e-4 --warmup-steps 100 --sample-reuse 4 --seed 53 --save-every 100 \
  --out "$OUT" --no-progress
