"""Stable object ids from per-frame instance masks (`track_ids`).

Most instance segmenters number their masks afresh in every frame, but the window buffer keys
its windows by id: an id must mean the same object for the whole window, and above all across
a full occlusion, the case amodal segmentation exists for. `IdTracker` relabels every sampled
frame with track ids by mask overlap and motion, and keeps a hidden object's id until it comes
back or times out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from amodal_ros.depth.camera import depth_metres, valid_depth

# A mask at least this share of the object's reference area (its largest recent area) shows
# the whole object, so it becomes the track's shape; a smaller one is taken as partly hidden.
FULL_AREA_SHARE = 0.8
REF_AREA_DECAY_PER_S = 0.9  # the reference area forgets 10 %/s (the object may really shrink)
# Along an axis, the two edges of a mask's box moving alike (within this many pixels: a
# segmenter's edges jitter by one) is rigid motion; an edge held by an occluder or the image
# border, or a changing shape, moves them differently and says nothing about the motion.
RIGID_TOLERANCE = 1
# Failing that, two masks whose areas differ by less than this share show the same visible
# part, so their centroid shift is the motion (a rotating or scaling object moves its edges).
STEADY_AREA = 0.15
VELOCITY_SMOOTHING = 0.5  # weight of the newest velocity measurement
MIN_REID_SHARE = 0.5  # share of a new mask inside a lost track's predicted shape to re-identify
# in the frame a track is lost, a new mask past this times its shape is the occluder that hid
# it, seen first as it covered the object (it took the object's id, and the model completed the
# person in front for the object behind). Only then: an object back after a while may be larger
# (seen only as a sliver before, or come nearer)
MAX_REID_GROWTH = 1.5
# A mask whose one-pixel ring is at least this share one other object's pixels lies within
# that object: a part or speck of its surface (a logo, a reflection, a segmenter's stray
# island on a gripper) or an object seen through a hole in it. Only depth tells them apart:
# it re-identifies a hidden object only when it lies BEHIND_MARGIN_M behind its encloser
ENCLOSED_SHARE = 0.9
BEHIND_MARGIN_M = 0.02
MAX_TRACKS = 256  # bound on memory: the longest-unseen track goes first beyond this
# ids are int32 labels: after this one they start at 1 again, skipping live tracks (2^31 ids:
# years of a new object every millisecond; an expired track's id may then name another)
MAX_TRACK_ID = 2**31 - 1
COUNTED_IDS = 1 << 20  # ids up to this are found by counting (fast), larger ones by sorting
# Assignment costs: a pair the gate rejects costs what leaving both unmatched costs (0), an
# admitted one less. A continued track costs -IoU, so the assignment takes the most overlap
# in all; a large cost for rejected pairs made it match as many masks as it could first and
# trade a good match for two poor ones (an object moving over a hidden one took its id). A
# resumed track costs its distance less this, so resuming as many lost tracks as the gate
# allows comes first, the nearest next.
_RESUMED = 1e6


@dataclass
class _Mask:
    """A binary mask as its bounding-box crop and the crop's top-left pixel."""

    crop: np.ndarray  # [h, w] bool
    y0: int
    x0: int
    area: int
    cy: float  # centroid, pixels
    cx: float

    @classmethod
    def of(cls, crop: np.ndarray, y0: int, x0: int) -> _Mask:
        ys, xs = np.nonzero(crop)
        return cls(crop, y0, x0, len(ys), y0 + float(ys.mean()), x0 + float(xs.mean()))

    @classmethod
    def from_image(cls, mask: np.ndarray) -> _Mask | None:
        ys, xs = np.nonzero(mask)
        if not len(ys):
            return None
        y0, x0 = int(ys.min()), int(xs.min())
        crop = mask[y0 : int(ys.max()) + 1, x0 : int(xs.max()) + 1].astype(bool)
        return cls(crop, y0, x0, len(ys), float(ys.mean()), float(xs.mean()))

    @property
    def size(self) -> int:
        """The larger side of the bounding box, pixels."""
        return max(self.crop.shape)

    def shifted(self, dy: float, dx: float) -> _Mask:
        iy, ix = int(round(dy)), int(round(dx))
        return _Mask(self.crop, self.y0 + iy, self.x0 + ix, self.area, self.cy + iy, self.cx + ix)

    def overlap(self, other: _Mask) -> int:
        """Pixels in both masks."""
        y0, x0 = max(self.y0, other.y0), max(self.x0, other.x0)
        y1 = min(self.y0 + self.crop.shape[0], other.y0 + other.crop.shape[0])
        x1 = min(self.x0 + self.crop.shape[1], other.x0 + other.crop.shape[1])
        if y1 <= y0 or x1 <= x0:
            return 0
        a = self.crop[y0 - self.y0 : y1 - self.y0, x0 - self.x0 : x1 - self.x0]
        b = other.crop[y0 - other.y0 : y1 - other.y0, x0 - other.x0 : x1 - other.x0]
        return int(np.count_nonzero(a & b))


@dataclass
class _Track:
    track_id: int
    last: _Mask  # the newest mask seen (the visible part)
    last_ns: int
    shape: _Mask  # the newest mask of the whole object (full-looking, or the model's amodal)
    shape_ns: int
    ref_area: float  # the whole object's area, as of ref_ns
    ref_ns: int
    vy: float = 0.0  # pixels/s
    vx: float = 0.0
    amodal: tuple[int, float, float] | None = None  # (stamp, cy, cx) of the last amodal mask

    def predict(self, mask: _Mask, since_ns: int, stamp_ns: int) -> _Mask:
        dt = (stamp_ns - since_ns) * 1e-9
        return mask.shifted(self.vy * dt, self.vx * dt)

    def measure_velocity(self, dy: float | None, dx: float | None, dt_ns: int) -> None:
        """Smooth in a shift (pixels over dt_ns); an axis given as None is not measured."""
        if dt_ns <= 0:
            return
        w, seconds = VELOCITY_SMOOTHING, dt_ns * 1e-9
        if dy is not None:
            self.vy = (1 - w) * self.vy + w * dy / seconds
        if dx is not None:
            self.vx = (1 - w) * self.vx + w * dx / seconds

    def reference_area(self, stamp_ns: int) -> float:
        return self.ref_area * REF_AREA_DECAY_PER_S ** ((stamp_ns - self.ref_ns) * 1e-9)


class IdTracker:
    """Relabel instance-label images so an object keeps one id over time.

    Rules, per sampled frame (stamps in ns, increasing):

    1. Every live track predicts where it is now: its newest mask and its newest whole-object
       shape, each shifted by the track's velocity times the time since it was taken.
    2. Continuation: a global (Hungarian) assignment of the frame's masks to all live tracks
       maximises the IoU of each mask with the track's predicted newest mask; a pair below
       `min_iou` is not a match.
    3. Re-identification: masks left over are assigned to tracks left over (hidden ones, or
       ones that jumped) with a looser gate: the mask lies mostly (MIN_REID_SHARE) inside the
       track's predicted shape, or its centroid is within `reid_distance` track sizes (the
       larger side of the shape's box) of the shape's centroid. Nearest first, globally. A
       mask enclosed by another object's mask (ENCLOSED_SHARE) is not a hidden object coming
       back unless camera depth puts it behind that object: a speck on the arm in front of a
       hidden box took the box's id, and the box a new one when it came back.
    4. A mask still unmatched starts a new track with a new id; ids count up and are never
       reused (not even after `reset`), so an id never names two objects.
    5. A track with no mask keeps its id, and its prediction moves on with its last velocity,
       until `timeout_ns` after it was last seen; then it is dropped (the stream gives it at
       least a window's span, so a track outlives the window buffer's object, dropped after
       `object_timeout` once in none of its frames).

    Motion and shape: the velocity is the smoothed shift between masks of consecutive frames,
    per axis: the box's shift where both its edges moved alike (RIGID_TOLERANCE), else the
    centroid's where the area barely changed (STEADY_AREA) and neither edge was held, else not
    measured: a mask sliding behind an occluder, or an occluder sweeping over a still object,
    moves one edge and its centroid without the object moving as much.
    A mask covering at least FULL_AREA_SHARE of the object's largest recent area becomes the
    track's shape; while the object is partly hidden the shape is the last full view, carried
    along by the velocity. `observe_amodal` replaces the shape with the model's amodal mask
    (the whole object where it was), which is what makes a long occlusion recoverable; an
    amodal mask that is not whole by the same area rule is not taken (the model failed).

    Memory: masks are kept as bounding-box crops, two per track, at most MAX_TRACKS tracks.
    A repeated stamp is relabelled again; a stamp going backwards resets the tracker.
    """

    def __init__(self, min_iou: float, reid_distance: float, timeout_ns: int):
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        if reid_distance < 0 or timeout_ns < 0:
            raise ValueError(
                f"reid_distance and timeout_ns must be >= 0, got {reid_distance}, {timeout_ns}"
            )
        self.min_iou = min_iou
        self.reid_distance = reid_distance
        self.timeout_ns = timeout_ns
        self.next_id = 1  # a node carries it over reactivations: an id never names two objects
        self.reset()

    def reset(self) -> None:
        """Forget every track (the stream starts over); new ids continue the count."""
        self.tracks: dict[int, _Track] = {}
        self._stamp_ns: int | None = None
        self._shape: tuple[int, ...] | None = None

    def update(
        self,
        stamp_ns: int,
        labels: np.ndarray,
        depth: np.ndarray | None = None,
        depth_encoding: str = "32FC1",
    ) -> np.ndarray:
        """Relabel one frame with track ids.

        Args:
            stamp_ns: the frame's stamp, ns.
            labels: [H, W] integer instance labels, 0 = background; ids arbitrary per frame.
            depth: [H, W] camera depth registered to `labels`, if the camera gives one (it
                tells an object seen through a hole from a speck in front); only the few
                pixels around an enclosed mask are read.
            depth_encoding: "32FC1" (metres) or "16UC1" (millimetres).

        Returns:
            [H, W] int32 labels: 0 = background, else the track id of each pixel's object.
        """
        if labels.ndim != 2:
            raise ValueError(f"labels must be [H, W], got shape {labels.shape}")
        # stamps going back start the stream over; so does a new image size (the tracks'
        # masks are in the old size's pixels, and would hand an id to another object)
        if (
            self._stamp_ns is not None
            and stamp_ns < self._stamp_ns
            or (self._shape is not None and labels.shape != self._shape)
        ):
            self.reset()
        self._shape = labels.shape
        previous_ns, self._stamp_ns = self._stamp_ns, stamp_ns
        self._expire(stamp_ns)
        # 1. the frame's masks, as crops (tracks past the timeout are gone: rule 5)
        compact = _compact(labels)
        masks = [
            _Mask.of(compact[box] == k + 1, box[0].start, box[1].start)
            for k, box in enumerate(_find_objects(compact))
        ]
        # 2. continuation, then 3. re-identification, then 4. new tracks
        tracks = list(self.tracks.values())
        matches = self._continue(masks, tracks, stamp_ns)
        left_masks = [i for i in range(len(masks)) if i not in matches]
        taken = set(matches.values())
        left_tracks = [t for t in tracks if t.track_id not in taken]
        if left_tracks:
            left_masks = [
                i
                for i in left_masks
                if not _in_front_of_its_encloser(masks[i], compact, depth, depth_encoding)
            ]
        matches.update(self._reidentify(masks, left_masks, left_tracks, stamp_ns, previous_ns))
        lut = np.zeros(len(masks) + 1, np.int32)  # compact label -> track id
        for i, mask in enumerate(masks):
            if i in matches:
                self._observe(self.tracks[matches[i]], mask, stamp_ns, previous_ns)
            else:
                matches[i] = self._start(mask, stamp_ns)
            lut[i + 1] = matches[i]
        self._bound(stamp_ns)
        return lut[compact]

    def observe_amodal(self, track_id: int, amodal: np.ndarray, stamp_ns: int) -> None:
        """Tell the tracker where the model says the whole object was (its amodal mask).

        Hidden and partly hidden tracks then predict from the model's mask instead of their
        last full view, and their velocity learns from the amodal centroids. A mask older than
        the track's current shape, an empty mask or an unknown (dropped) id is ignored, and so
        is a mask smaller than FULL_AREA_SHARE of the object's reference area: a model that did
        not complete the object (it gave back the visible part, which stays at the occluder's
        edge while the object slides behind it) must not stop the track's prediction there.

        Args:
            track_id: the object id of the result (a track id).
            amodal: [H, W] bool amodal mask of the frame at `stamp_ns`.
            stamp_ns: the stamp of that frame, ns.
        """
        track = self.tracks.get(track_id)
        shape = _Mask.from_image(amodal) if track is not None else None
        if track is None or shape is None:
            return
        reference = track.reference_area(stamp_ns)
        if shape.area < FULL_AREA_SHARE * reference:
            return
        if track.amodal is not None and stamp_ns > track.amodal[0]:
            before, cy, cx = track.amodal
            track.measure_velocity(shape.cy - cy, shape.cx - cx, stamp_ns - before)
        if track.amodal is None or stamp_ns > track.amodal[0]:
            track.amodal = (stamp_ns, shape.cy, shape.cx)
        if stamp_ns > track.shape_ns:
            track.shape, track.shape_ns = shape, stamp_ns
        if shape.area >= reference:
            track.ref_area, track.ref_ns = float(shape.area), stamp_ns

    def _continue(self, masks: list[_Mask], tracks: list[_Track], stamp_ns: int) -> dict:
        if not masks or not tracks:
            return {}
        predicted = [t.predict(t.last, t.last_ns, stamp_ns) for t in tracks]
        iou = np.zeros((len(masks), len(tracks)))
        for i, mask in enumerate(masks):
            for j, pred in enumerate(predicted):
                both = mask.overlap(pred)
                iou[i, j] = both / (mask.area + pred.area - both) if both else 0.0
        return _assign(np.where(iou >= self.min_iou, -iou, 0.0), tracks)

    def _reidentify(
        self,
        masks: list[_Mask],
        left: list[int],
        tracks: list[_Track],
        stamp_ns: int,
        previous_ns: int | None,
    ) -> dict:
        if not left or not tracks:
            return {}
        predicted = [t.predict(t.shape, t.shape_ns, stamp_ns) for t in tracks]
        cost = np.zeros((len(left), len(tracks)))
        for i, k in enumerate(left):
            mask = masks[k]
            for j, shape in enumerate(predicted):
                distance = np.hypot(mask.cy - shape.cy, mask.cx - shape.cx) / shape.size
                inside = mask.overlap(shape) / mask.area
                near = inside >= MIN_REID_SHARE or distance <= self.reid_distance
                just_lost = tracks[j].last_ns == previous_ns
                if near and not (just_lost and mask.area > MAX_REID_GROWTH * shape.area):
                    cost[i, j] = distance - _RESUMED
        return {left[i]: track_id for i, track_id in _assign(cost, tracks).items()}

    def _observe(self, track: _Track, mask: _Mask, stamp_ns: int, previous_ns: int | None) -> None:
        if track.last_ns == previous_ns:  # seen in consecutive frames
            track.measure_velocity(*_shift(track.last, mask), stamp_ns - track.last_ns)
        track.last, track.last_ns = mask, stamp_ns
        reference = track.reference_area(stamp_ns)
        if mask.area >= FULL_AREA_SHARE * reference:
            track.shape, track.shape_ns = mask, stamp_ns
        if mask.area >= reference:
            track.ref_area, track.ref_ns = float(mask.area), stamp_ns

    def _start(self, mask: _Mask, stamp_ns: int) -> int:
        track_id = self.next_id
        while track_id in self.tracks:  # only after a wrap
            track_id = track_id % MAX_TRACK_ID + 1
        self.next_id = track_id % MAX_TRACK_ID + 1
        self.tracks[track_id] = _Track(
            track_id, mask, stamp_ns, mask, stamp_ns, float(mask.area), stamp_ns
        )
        return track_id

    def _expire(self, stamp_ns: int) -> None:
        for track_id, track in list(self.tracks.items()):
            if stamp_ns - track.last_ns > self.timeout_ns:
                del self.tracks[track_id]

    def _bound(self, stamp_ns: int) -> None:
        """Drop the longest-unseen tracks beyond MAX_TRACKS, never one seen in this frame (a
        frame of more masks than that gave its objects new ids every frame)."""
        unseen = [t for t in self.tracks.values() if t.last_ns < stamp_ns]
        excess = len(self.tracks) - MAX_TRACKS
        for track in sorted(unseen, key=lambda t: t.last_ns)[: max(excess, 0)]:
            del self.tracks[track.track_id]


def _in_front_of_its_encloser(
    mask: _Mask, compact: np.ndarray, depth: np.ndarray | None, encoding: str
) -> bool:
    """Whether `mask` lies within one other object's mask (its ring, ENCLOSED_SHARE) and depth
    does not put it behind that object (no depth: it may be in front)."""
    h, w = mask.crop.shape
    y0, x0 = mask.y0 - 1, mask.x0 - 1
    if y0 < 0 or x0 < 0 or y0 + h + 2 > compact.shape[0] or x0 + w + 2 > compact.shape[1]:
        return False  # the image's edge is part of its ring
    own = np.pad(mask.crop, 1)
    ring = cv2.dilate(own.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~own
    around = compact[y0 : y0 + h + 2, x0 : x0 + w + 2]
    values, counts = np.unique(around[ring], return_counts=True)
    best = int(np.argmax(counts))
    if values[best] == 0 or counts[best] < ENCLOSED_SHARE * counts.sum():
        return False
    if depth is None:
        return True
    near = depth_metres(depth[y0 : y0 + h + 2, x0 : x0 + w + 2], encoding)
    inside, outside = near[own], near[ring & (around == values[best])]
    inside, outside = inside[valid_depth(inside)], outside[valid_depth(outside)]
    if not len(inside) or not len(outside):
        return True
    return not np.median(inside) >= np.median(outside) + BEHIND_MARGIN_M


def _compact(labels: np.ndarray) -> np.ndarray:
    """[H, W] int32 labels renumbered 1..K in id order, 0 = background."""
    if labels.size and labels.min() >= 0 and labels.max() <= COUNTED_IDS:
        present = np.bincount(labels.ravel().astype(np.int64, copy=False)) > 0  # no sort
        present[0] = False
        index = np.cumsum(present, dtype=np.int32) * present
        return index[labels]
    values, inverse = np.unique(labels, return_inverse=True)
    index = np.cumsum(values != 0, dtype=np.int32) * (values != 0)
    return index[inverse.reshape(labels.shape)]


def _shift(before: _Mask, after: _Mask) -> tuple[float | None, float | None]:
    """(dy, dx) motion between two masks of an object, None along an axis that says nothing."""
    steady = abs(after.area - before.area) <= STEADY_AREA * max(after.area, before.area)
    axes = (
        (0, before.y0, after.y0, after.cy - before.cy),
        (1, before.x0, after.x0, after.cx - before.cx),
    )
    shifts: list[float | None] = []
    for axis, start_before, start_after, centroid_shift in axes:
        low = start_after - start_before
        high = low + after.crop.shape[axis] - before.crop.shape[axis]
        if abs(high - low) <= RIGID_TOLERANCE:  # both edges moved alike: the box's shift
            shifts.append((low + high) / 2)
        elif min(abs(low), abs(high)) <= RIGID_TOLERANCE:
            # one edge held, the other moved: an occluder's edge sweeping over a still object,
            # or a moving object's edge held by an occluder; the centroid's half-way shift is
            # neither (an arm sweeping a still object gave it 20 px/s and, once hidden, a new
            # id), so the axis says nothing and the track keeps its velocity
            shifts.append(None)
        else:
            shifts.append(centroid_shift if steady else None)
    return shifts[0], shifts[1]


def _assign(cost: np.ndarray, tracks: list[_Track]) -> dict[int, int]:
    """{mask index: track id} of the cheapest global assignment; pairs the gate rejects (cost
    0) are left out."""
    from scipy.optimize import linear_sum_assignment  # only when tracking runs

    rows, cols = linear_sum_assignment(cost)
    return {int(i): tracks[j].track_id for i, j in zip(rows, cols) if cost[i, j] < 0}


def _find_objects(labels: np.ndarray):
    """scipy.ndimage.find_objects, imported when tracking runs (the stream imports without
    scipy where tracking is off)."""
    from scipy import ndimage

    return ndimage.find_objects(labels)
