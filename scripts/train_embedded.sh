#!/usr/bin/env bash
# Retrain the embedded default model from scratch and copy it into amodal_ros/models/embedded/
# (the recipe of its MODEL_CARD.md). On 2 CPU cores: about 25 min for the autoencoder, then the
# two stage-1 runs and stage 2 side by side, one core each (about 70 min). Reruns resume.
set -euo pipefail
cd "$(dirname "$0")/.."
train() { scripts/with_env.sh amodal-ros train "$@"; }

train config/train_vae.yaml                          # 1. the small autoencoder
OMP_NUM_THREADS=1 train config/train_stage2.yaml --no-progress > train_out/stage2.log 2>&1 &
stage2=$!                                            # 2. stage 2 beside stage 1
OMP_NUM_THREADS=1 train config/train_stage1_masks.yaml  # 3. stage 1, masks only
OMP_NUM_THREADS=1 train config/train_stage1.yaml        # 4. stage 1, + depth (zero-init)
wait "$stage2"
scripts/with_env.sh python -m amodal_ros.train.ship train_out
