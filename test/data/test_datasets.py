"""COCO RLE and the SAIL-VOS / TAO-Amodal window readers, on fixture files the tests write."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amodal_ros.data.datasets import SailVosWindows, TaoAmodalWindows
from amodal_ros.data.rle import decode, encode


def _small():
    m = np.zeros((6, 7), bool)
    m[1:4, 2:6] = True
    m[5, 0] = m[0, 6] = True
    return m


def _big():
    m = np.zeros((40, 50), bool)
    m[3:30, 10:45] = True
    m[20:25, 0:5] = True
    return m


# strings produced by pycocotools.mask.encode for the same masks (recorded once)
PYCOCOTOOLS = {
    "small": "5172L00000ON3",
    "big": "d05S10000000g5f0cI"
    "0000000000000000000000000000000000000000000000000000000000000000000U6",
}


@pytest.mark.parametrize("name, make", [("small", _small), ("big", _big)])
def test_rle_matches_pycocotools(name, make):
    mask = make()
    assert encode(mask) == {"size": list(mask.shape), "counts": PYCOCOTOOLS[name]}
    assert np.array_equal(decode({"size": list(mask.shape), "counts": PYCOCOTOOLS[name]}), mask)


def test_rle_round_trip_random_masks_and_plain_counts():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((rng.integers(1, 30), rng.integers(1, 30))) < rng.random()
        assert np.array_equal(decode(encode(mask)), mask)
    # the uncompressed form: counts as a list, column-major, starting with background
    plain = {"size": [2, 3], "counts": [1, 2, 3]}
    np.testing.assert_array_equal(decode(plain), [[False, True, False], [True, False, False]])
    with pytest.raises(ValueError, match="sum to 5"):
        decode({"size": [2, 3], "counts": [2, 3]})


def _sailvos(tmp_path, windows=2, frames=3):
    rng = np.random.default_rng(1)
    entries, truth = [], []
    for w in range(windows):
        amodal = rng.random((frames, 8, 10)) < 0.5
        modal = amodal & (rng.random(amodal.shape) < 0.7)
        entries.append(
            {
                "segmentation": [encode(m) for m in amodal],
                "visible_mask": [encode(m) for m in modal],
                "bbox": [[1, 2, 3, 4]] * frames,
                "image_ids": list(range(frames)),
                "obj_id": 10 + w,
                "category_id": 3,
                "image_file_names": [f"seq{w}/{t:06d}.bmp" for t in range(frames)],
            }
        )
        truth.append((modal, amodal))
    path = tmp_path / "diffusion_vas_sailvos_val.json"
    path.write_text(json.dumps(entries))
    return path, truth


def test_sailvos_windows(tmp_path):
    path, truth = _sailvos(tmp_path)
    windows = SailVosWindows(path, root=tmp_path / "sailvos")
    assert len(windows) == 2
    w = windows[1]
    assert (w.object_id, w.category_id) == (11, 3)
    assert np.array_equal(w.modal, truth[1][0]) and np.array_equal(w.amodal, truth[1][1])
    assert w.image_paths[2] == tmp_path / "sailvos" / "seq1" / "000002.bmp"
    assert w.amodal_boxes.shape == (3, 4)


def test_tao_amodal_windows(tmp_path):
    modal = np.zeros((2, 5, 6), bool)
    modal[:, 1:3, 2:5] = True
    entry = {
        "track_id": 7,
        "category_id": 1,
        "video_id": 2,
        "file_names": ["v/a.jpg", "v/b.jpg"],
        "rles": [encode(m) for m in modal],
        "height": 5,
        "width": 6,
        "amodal_bboxes": [[0, 0, 6, 5], [1, 1, 4, 4]],
    }
    path = tmp_path / "tao.json"
    path.write_text(json.dumps([entry]))
    w = TaoAmodalWindows(path, root=tmp_path)[0]
    assert w.object_id == 7 and w.amodal is None
    assert np.array_equal(w.modal, modal)
    np.testing.assert_array_equal(w.amodal_boxes[1], [1, 1, 4, 4])
    # as the published file holds them (and the reference reads them): each frame's counts
    # alone, of the window's height x width (read before as a dict: "string indices must be
    # integers")
    entry["rles"] = [encode(m)["counts"] for m in modal]
    path.write_text(json.dumps([entry]))
    assert np.array_equal(TaoAmodalWindows(path, root=tmp_path)[0].modal, modal)


def test_readers_name_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SailVosWindows(tmp_path / "nope.json", tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"obj_id": 1}]))
    with pytest.raises(ValueError, match="window 0 lacks"):
        SailVosWindows(bad, tmp_path)
    bad.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ValueError, match="JSON list"):
        TaoAmodalWindows(bad, tmp_path)
    bad.write_text('[{"obj_id": 1,')
    with pytest.raises(ValueError, match="bad.json is not readable JSON"):
        TaoAmodalWindows(bad, tmp_path)


def test_a_window_that_does_not_decode_is_named(tmp_path):
    # before: 'RLE counts sum to ...' or lists of different lengths taken as they came
    path, _ = _sailvos(tmp_path)
    entries = json.loads(path.read_text())
    entries[1]["segmentation"][0]["size"] = [9, 10]  # the counts sum to 8 x 10
    entries[0]["visible_mask"] = entries[0]["visible_mask"][:1]  # 1 modal of 3 frames
    path.write_text(json.dumps(entries))
    windows = SailVosWindows(path, tmp_path)
    with pytest.raises(ValueError, match=r"sailvos_val.json: window 1: RLE counts sum to 80"):
        windows[1]
    with pytest.raises(ValueError, match=r"window 0 has frames of different counts .*'visible"):
        windows[0]
    for cut in ("92203P", "9220 "):  # cut mid-number, a foreign byte: an IndexError before
        entries[1]["segmentation"][0] = {"size": [8, 10], "counts": cut}
        path.write_text(json.dumps(entries))
        with pytest.raises(ValueError, match="window 1: compressed RLE counts are damaged"):
            SailVosWindows(path, tmp_path)[1]
    (tmp_path / "boxes").mkdir()
    path, _ = _sailvos(tmp_path / "boxes")
    entries = json.loads(path.read_text())
    entries[0]["bbox"] = entries[0]["bbox"][:2]  # a box per frame, one short (went unnoticed)
    path.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=r"window 0 has frames of different counts .*'bbox': 2"):
        SailVosWindows(path, tmp_path)[0]
