#!/usr/bin/env bash
# Start or continue the carried run runs/NAME (its README.md: why, where its steps ran; its
# plan.json: the distill arguments and the rule it is judged by). The state carried in
# runs/NAME is unpacked into $OUT first when $OUT has none; a carried state ahead of $OUT's
# own is an error, not a silent step back. Before a session ends, carry its last save back
# (and commit it):
#   scripts/with_env.sh python -m amodal_ros.train.carry pack --state "$OUT" runs/NAME
# Usage, from anywhere: bash runs/run.sh NAME   (OUT=... to train elsewhere than train_out/NAME;
# RUNS=... for run folders elsewhere than runs/)
set -euo pipefail
cd "$(dirname "$0")/.."  # the project root
NAME=${1:?usage: bash runs/run.sh NAME}
HERE=${RUNS:-runs}/$NAME
OUT=${OUT:-train_out/$NAME}
[[ -f $HERE/plan.json ]] || { echo "$HERE/plan.json is missing: no such carried run" >&2; exit 2; }
# the plan first, into a variable: one that fails to load stops here (set -e) before anything
# is unpacked, where a process substitution would hand distill no arguments, i.e. its defaults
plan_args=$(scripts/with_env.sh python -m amodal_ros.train.judge "$HERE" --distill-args)
mapfile -t args <<< "$plan_args"
step_of() { scripts/with_env.sh python -c 'import json, sys; print(json.load(open(sys.argv[1]))["step"])' "$1"; }
kind_of() { scripts/with_env.sh python -c 'import json, sys; print(json.load(open(sys.argv[1])).get("kind", ""))' "$1"; }
if compgen -G "$HERE/weights-*.safetensors" > /dev/null && [[ ! -f "$HERE/run.json" ]]; then
  echo "$HERE has shards but no run.json: an interrupted pack; pack the run again" >&2
  exit 2
fi
if [[ -f "$HERE/run.json" ]]; then
  if [[ $(kind_of "$HERE/run.json") != state ]]; then  # pack --within's checkpoint fallback
    echo "$HERE holds a carried checkpoint, not a training state: unpack it to judge or ship" \
      "it (python -m amodal_ros.train.carry unpack $HERE DIR); a run continues from a state" \
      "(carry pack --state)" >&2
    exit 2
  fi
  carried=$(step_of "$HERE/run.json")
  if [[ ! -f "$OUT/state/step.json" ]]; then
    scripts/with_env.sh python -m amodal_ros.train.carry unpack "$HERE" "$OUT"
  elif (( $(step_of "$OUT/state/step.json") < carried )); then
    echo "$OUT is at step $(step_of "$OUT/state/step.json"), behind the state carried in $HERE" \
      "(step $carried): remove $OUT to continue from the carried state" >&2
    exit 2
  fi
fi
OMP_NUM_THREADS=2 exec nice -n 19 scripts/with_env.sh amodal-ros distill "${args[@]}" \
  --out "$OUT" --no-progress
