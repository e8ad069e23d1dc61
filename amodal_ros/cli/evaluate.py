r"""`amodal-ros eval`: mIoU / mIoU_occ of the model and the baselines on held-out clips.

Usage:
    amodal-ros eval --out eval_out                         # baselines only, 20 test clips
    amodal-ros eval --out eval_out --checkpoint embedded --completion-checkpoint embedded
    amodal-ros eval --out eval_out --checkpoint CKPT [--completion-checkpoint CKPT2] \
        [--clips 100] [--samples 3] [--data data/synth/test] [--clip-height 128 --clip-width 256]

Each clip is one window through the node's WindowProcessor. Writes results.md (table),
results.json and examples.png (RGB, ground truth, each method).
"""

from __future__ import annotations

from amodal_ros.eval.run import EvalArgs as Args
from amodal_ros.eval.run import run

__all__ = ["Args", "run"]
