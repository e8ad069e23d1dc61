r"""`amodal-ros replay-many BAGS... --out DIR`: many bags through `amodal-ros replay` in parallel
on Ray, each bag to DIR/<bag name>, with a table and DIR/summary.csv + summary.json at the end
(see amodal_ros.bags.fleet). Needs Ray: pip install 'ray>=2.40' (or amodal_ros[ray]).

Usage:
    amodal-ros replay-many recordings/ --out results            # a local Ray, all CPUs
    amodal-ros replay-many 'runs/*' list.txt --out results --cpus-per-bag 2
    amodal-ros replay-many /shared/bags --out /shared/results --address auto \
        --gpus-per-bag 1 --checkpoint /shared/models/diffusion-vas-amodal-segmentation

Run it again to finish an interrupted run: complete outputs are skipped (--overwrite redoes).
"""

from __future__ import annotations

from amodal_ros.bags.fleet import ReplayManyArgs as Args
from amodal_ros.bags.fleet import run

__all__ = ["Args", "run"]
