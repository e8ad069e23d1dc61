"""StampSynchronizer: pairing RGB, masks and depth by stamp, whatever order they arrive in."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from amodal_ros.pipeline.sync import StampSynchronizer

MS = 1_000_000  # ns


def feed(sync, events):
    """events: (input, stamp_ns); the item is (input, stamp) so pairs can be checked."""
    frames = []
    for name, stamp in events:
        frames += sync.add(name, stamp, (name, stamp))
    return frames


def pairs(frames):
    """{pivot stamp: {input: partner stamp}} of emitted frames."""
    return {f["stamp_ns"]: {k: v[1] for k, v in f.items() if k != "stamp_ns"} for f in frames}


def stream(stamps_by_input):
    """Each input's messages in stamp order, interleaved by stamp (ties: rgb, masks, depth)."""
    events = [(name, s) for name, stamps in stamps_by_input.items() for s in stamps]
    rank = {name: i for i, name in enumerate(stamps_by_input)}
    return sorted(events, key=lambda e: (e[1], rank[e[0]]))


def test_exact_pairs_equal_stamps_and_emits_each_frame_once():
    sync = StampSynchronizer(["rgb", "masks", "depth"])
    stamps = [i * 33 * MS for i in range(10)]
    frames = feed(sync, stream({"rgb": stamps, "masks": stamps, "depth": stamps}))
    assert [f["stamp_ns"] for f in frames] == stamps
    assert all(f["rgb"] == ("rgb", s) for f, s in zip(frames, stamps))
    assert pairs(frames) == {s: {"rgb": s, "masks": s, "depth": s} for s in stamps}
    assert sync.matched == 10
    assert sum(sync.unmatched.values()) == 0
    assert sync.pending() == {"rgb": 0, "masks": 0, "depth": 0}


def test_an_unstamped_publisher_counts_repeated_stamps_not_unmatched_rgb():
    """Stamps left at 0 (or use_sim_time without /clock): every later RGB repeats the stamp
    of the frame emitted; counted unmatched, the node's hint sent users to their remappings."""
    sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS, queue_size=30)
    unstamped = [(name, 0) for _ in range(100) for name in ("rgb", "masks", "depth")]
    frames = feed(sync, unstamped)  # more than a queue's worth of each
    assert len(frames) == 1 and sync.repeated == {"rgb": 99, "masks": 99, "depth": 99}
    assert sum(sync.unmatched.values()) == 0 and sync.pending() == dict.fromkeys(sync.inputs, 0)
    feed(sync, [("rgb", -5 * MS)])  # late, not repeated
    assert sync.repeated["rgb"] == 99 and sync.unmatched["rgb"] == 1


def test_exact_pair_is_emitted_as_soon_as_the_last_partner_arrives():
    sync = StampSynchronizer(["rgb", "masks"])
    assert sync.add("rgb", 100, "a") == []
    (frame,) = sync.add("masks", 100, "b")
    assert frame == {"stamp_ns": 100, "rgb": "a", "masks": "b"}


def test_exact_mode_drops_a_pivot_whose_partner_stamp_differs():
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=0)
    frames = feed(sync, [("rgb", 100), ("masks", 101), ("rgb", 200), ("masks", 200)])
    assert pairs(frames) == {200: {"rgb": 200, "masks": 200}}
    assert sync.unmatched == {"rgb": 1, "masks": 1}


def test_arrival_order_does_not_change_the_pairs():
    rng = np.random.default_rng(0)
    rgb = [i * 33 * MS for i in range(12)]
    masks = [s + int(rng.integers(-4, 5)) * MS for s in rgb]  # offsets within tolerance
    depth = [s + int(rng.integers(-4, 5)) * MS for s in rgb]
    expected = {r: {"rgb": r, "masks": m, "depth": d} for r, m, d in zip(rgb, masks, depth)}
    orders = {
        "interleaved": stream({"rgb": rgb, "masks": masks, "depth": depth}),
        "masks before rgb": [("masks", s) for s in masks] + stream({"rgb": rgb, "depth": depth}),
        "depth late": stream({"rgb": rgb, "masks": masks}) + [("depth", s) for s in depth],
        "rgb last": stream({"masks": masks, "depth": depth}) + [("rgb", s) for s in rgb],
        "lagging depth": _lagged(stream({"rgb": rgb, "masks": masks}), depth, lag=3),
    }
    end = [("masks", 10**12), ("depth", 10**12)]  # proves the last pivot's partners are final
    for what, events in orders.items():
        sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS, queue_size=50)
        frames = feed(sync, events + end)
        assert pairs(frames) == expected, what
        assert [f["stamp_ns"] for f in frames] == rgb, what  # oldest first
        assert sum(sync.unmatched.values()) == 0, what


def test_random_interleavings_with_lost_messages_give_the_same_pairs():
    rng = np.random.default_rng(1)
    rgb = [i * 33 * MS for i in range(40)]
    per_input = {
        name: [s + int(rng.integers(-5, 6)) * MS for s in rgb if rng.random() > 0.15]
        for name in ("masks", "depth")
    }
    per_input["rgb"] = [s for s in rgb if rng.random() > 0.1]
    end = [("masks", 10**12), ("depth", 10**12)]
    results = []
    for _ in range(20):  # any merge that keeps each topic in order
        queues = {name: list(stamps) for name, stamps in per_input.items()}
        events = []
        while any(queues.values()):
            name = rng.choice([n for n, q in queues.items() if q])
            events.append((name, queues[name].pop(0)))
        sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS, queue_size=100)
        results.append(pairs(feed(sync, events + end)))
    assert all(r == results[0] for r in results)
    kept = set(per_input["rgb"])
    assert set(results[0]) <= kept and len(results[0]) >= 0.5 * len(kept)
    for pivot, partners in results[0].items():
        assert all(abs(partners[n] - pivot) <= 10 * MS for n in ("masks", "depth"))


def _lagged(events, late_stamps, lag):
    """Insert depth message i after the (i + lag)-th rgb message: a slow topic."""
    out, rgb_seen, late = [], 0, list(late_stamps)
    for event in events:
        out.append(event)
        if event[0] == "rgb":
            rgb_seen += 1
            while late and rgb_seen - lag > len(late_stamps) - len(late):
                out.append(("depth", late.pop(0)))
    return out + [("depth", s) for s in late]


def test_all_permutations_of_one_frame_give_the_same_pair():
    for order in itertools.permutations([("rgb", 100), ("masks", 103), ("depth", 98)]):
        sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=5)
        # a later message per partner input proves the partners cannot get closer
        frames = feed(sync, list(order) + [("masks", 200), ("depth", 200)])
        assert pairs(frames) == {100: {"rgb": 100, "masks": 103, "depth": 98}}, order


def test_nearest_partner_within_tolerance_is_chosen():
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=20)
    frames = feed(sync, [("masks", 85), ("masks", 96), ("rgb", 100), ("masks", 107)])
    # 96 (4 away) beats 85 (15) and 107 (7)
    assert pairs(frames) == {100: {"rgb": 100, "masks": 96}}
    assert sync.pending() == {"rgb": 0, "masks": 2}  # 85 and 107 may serve a pivot up to 105
    (frame,) = feed(sync, [("rgb", 120), ("masks", 150)])  # 107: 13 away, 150: 30
    assert frame["masks"] == ("masks", 107)
    assert sync.unmatched == {"masks": 1}  # 85 can serve no later pivot: discarded
    tie = StampSynchronizer(["rgb", "masks"], tolerance_ns=20)
    (frame,) = feed(tie, [("masks", 95), ("masks", 105), ("rgb", 100)])
    assert frame["masks"] == ("masks", 95)  # equally near: the earlier one


def test_partner_outside_tolerance_is_not_used():
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=5)
    frames = feed(sync, [("rgb", 100), ("masks", 94), ("masks", 106)])
    assert frames == []
    assert sync.unmatched["rgb"] == 1  # masks passed 105 without a partner: hopeless


def test_pivot_waits_until_the_partner_input_has_passed_its_stamp():
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=10)
    assert sync.add("rgb", 100, "rgb") == []
    # a partner 3 before: a closer one may still come, so wait
    assert sync.add("masks", 97, "m97") == []
    assert sync.pending() == {"rgb": 1, "masks": 1}
    # the masks input reaches 101 >= 100: nothing closer can come; 101 is nearest
    (frame,) = sync.add("masks", 101, "m101")
    assert frame["masks"] == "m101"


def test_pivot_stops_waiting_when_partner_passes_without_a_closer_stamp():
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=10)
    feed(sync, [("rgb", 100), ("masks", 97)])
    (frame,) = sync.add("masks", 140, ("masks", 140))
    assert frame["masks"] == ("masks", 97)


def test_pivot_with_no_partner_is_counted_and_dropped_once_hopeless():
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=10)
    assert feed(sync, [("rgb", 100), ("rgb", 200)]) == []
    assert feed(sync, [("masks", 105)]) != []  # 100 matched
    assert feed(sync, [("masks", 300)]) == []  # 200 has nothing within 10 and masks passed it
    assert sync.unmatched == {"rgb": 1}
    assert sync.pending()["rgb"] == 0


def test_missing_input_gives_no_frames_and_bounded_queues():
    sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=5 * MS, queue_size=8)
    stamps = [i * 33 * MS for i in range(200)]
    frames = feed(sync, stream({"rgb": stamps, "masks": stamps}))  # depth never arrives
    assert frames == []
    pending = sync.pending()
    assert pending["rgb"] <= 8 and pending["masks"] <= 8
    assert sync.unmatched["rgb"] == 200 - pending["rgb"]
    assert sync.unmatched["masks"] == 200 - pending["masks"]


def test_flood_of_one_input_is_bounded_and_counted():
    sync = StampSynchronizer(["rgb", "masks"], queue_size=10)
    for i in range(10_000):
        assert sync.add("masks", i, i) == []
        assert sync.pending()["masks"] <= 10
    assert sync.unmatched["masks"] == 10_000 - 10
    # the newest ones are kept and still pair
    (frame,) = sync.add("rgb", 9_999, "rgb")
    assert frame["masks"] == 9_999


def test_stamp_going_back_ends_the_old_stream_as_a_flush_would_and_starts_over():
    s = 100 * MS  # a bag loop goes back its length (a restart past RESTART_NS: 250 ms)
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=15 * s, queue_size=5)
    feed(sync, [("rgb", 10 * s), ("masks", 5 * s), ("masks", 20 * s), ("rgb", 30 * s)])
    assert sync.pending() == {"rgb": 1, "masks": 1}  # 30 waits; 20 may still serve it
    unmatched = sum(sync.unmatched.values())
    assert sync.add("masks", 0, "m0") == []  # masks went back: a loop, or one late mask?
    assert sync.pending() == {"rgb": 1, "masks": 1}  # held: nothing discarded yet
    # the images went back there too: a loop; the old stream's 30 takes its best partner
    # within tolerance as at a stream's end, before the new stream's first frame
    last, first = sync.add("rgb", 0, "r0")
    assert last == {"stamp_ns": 30 * s, "rgb": ("rgb", 30 * s), "masks": ("masks", 20 * s)}
    assert first == {"stamp_ns": 0, "rgb": "r0", "masks": "m0"}
    assert sync.pending() == {"rgb": 0, "masks": 0}
    assert sum(sync.unmatched.values()) == unmatched


@pytest.mark.parametrize("lag", [1, 5, 12])
def test_a_bag_loop_while_masks_lag_the_images_loses_no_frame(lag):
    """The images loop while the segmenter still sends the old loop's last `lag` masks: those
    pair with the old loop's images, the new loop's images wait for theirs (discarding the
    queues at the restart lost about 2 * lag + 1 frames a loop)."""
    period = 125 * MS  # 8 fps, a 40-frame bag played three times, the segmenter `lag` behind
    played = [i * period for i in range(40)] * 3
    sync = StampSynchronizer(["rgb", "masks", "depth"], queue_size=30)
    ordered = []
    for i, stamp in enumerate(played + [None] * lag):
        if stamp is not None:
            ordered += [("rgb", stamp), ("depth", stamp)]
        if i >= lag:
            ordered.append(("masks", played[i - lag]))
    emitted = feed(sync, ordered) + sync.flush()
    assert [f["stamp_ns"] for f in emitted] == played
    assert all(f["masks"][1] == f["stamp_ns"] == f["depth"][1] for f in emitted)
    assert sum(sync.unmatched.values()) == 0


def test_one_late_mask_costs_its_own_frame_not_every_frame_queued():
    """A segmenter 1 s behind its images sends one mask 300 ms later still: the images and
    masks queued meanwhile still pair (a restart on it discarded 31 of 100 frames)."""
    period = 33 * MS
    sync = StampSynchronizer(["rgb", "masks"], queue_size=300)
    events = []
    for i in range(100):
        events.append(("rgb", i * period))
        if i >= 30:  # masks run 30 frames (1 s) behind
            k = i - 30
            if k != 50:
                events.append(("masks", k * period))
            if k == 59:  # mask 50 comes 9 frames (300 ms) late
                events.append(("masks", 50 * period))
    for k in range(70, 100):
        events.append(("masks", k * period))
    emitted = [f["stamp_ns"] for f in feed(sync, events) + sync.flush()]
    assert set(emitted) == {i * period for i in range(100)} - {50 * period}
    assert sync.unmatched == {"rgb": 1, "masks": 1}  # frame 50's image and its late mask
    # a loop still restarts: the next message of the stream goes back there too
    again = feed(sync, [("rgb", 0), ("masks", 0), ("rgb", period), ("masks", period)])
    assert [f["stamp_ns"] for f in again] == [0, period]


def test_stamps_going_back_restart_matching():
    # a bag loop or a sim-time reset: stamps of every input start again from a lower value
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=5)
    stamps = [i * 100 * MS for i in range(10)]  # 0.9 s, then back to 0
    first = feed(sync, stream({"rgb": stamps, "masks": stamps}))
    second = feed(sync, stream({"rgb": stamps, "masks": stamps}))
    assert [f["stamp_ns"] for f in first] == stamps
    assert [f["stamp_ns"] for f in second] == stamps


def test_a_message_out_of_order_takes_its_place_instead_of_restarting():
    """A segmenter publishing from a thread pool swaps two masks while RGB runs ahead: the
    swapped pair costs at most its own frame, not every frame queued (a step back of a frame
    was taken for a bag loop); a late RGB frame is counted, never emitted out of order."""
    sync = StampSynchronizer(["rgb", "masks"])
    period = 33 * MS
    rgb = [i * period for i in range(10)]
    masks = [i * period for i in (0, 1, 2, 4, 3, 5, 6, 7, 8, 9)]  # 3 and 4 swapped
    events = [("rgb", s) for s in rgb[:4]]  # the masks lag the images by 4 frames
    for k, m in enumerate(masks):
        events.append(("masks", m))
        if k + 4 < len(rgb):
            events.append(("rgb", rgb[k + 4]))
    emitted = [f["stamp_ns"] for f in feed(sync, events)]
    assert emitted == sorted(emitted) and len(emitted) >= 9
    assert set(rgb) - set(emitted) <= {3 * period}
    assert sync.add("rgb", 8 * period, "late") == [] and sync.unmatched["rgb"] >= 1


def test_images_stamped_behind_a_frame_that_left_are_counted_as_such():
    """A camera whose stamps run backwards (a clock stepped back) loses its images as
    unmatched; `behind` says why (only a count of unmatched said so before)."""
    sync = StampSynchronizer(["rgb", "masks"])
    backwards = [-i * 33 * MS for i in range(5)]
    frames = feed(sync, [(name, s) for s in backwards for name in ("rgb", "masks")])
    assert len(frames) == 1 and sync.behind == 4 and sync.unmatched["rgb"] == 4
    feed(sync, [("rgb", 33 * MS), ("masks", 33 * MS)])  # forward again: pairs, none behind
    assert sync.matched == 2 and sync.behind == 4


def test_an_image_stamped_behind_while_the_masks_looped_first_is_counted_as_such():
    """The images still feed the old stream after the masks looped; an image stamped behind
    its last frame was counted unmatched there, but `behind` (an int the old stream's copy
    does not share) lost it: replay's summary and the diagnostics never said why."""
    sync = StampSynchronizer(["rgb", "masks"])
    feed(sync, [(name, s) for s in (10_000 * MS, 10_100 * MS) for name in ("rgb", "masks")])
    feed(sync, [("masks", 0), ("masks", 100 * MS)])  # the masks loop first
    feed(sync, [("rgb", 10_050 * MS)])  # behind the frame at 10.1 s, in the old stream
    assert sync.unmatched["rgb"] == 1 and sync.behind == 1


def test_a_segmenter_swapping_neighbouring_masks_loses_its_first_swap_only():
    """A segmenter's two workers publish masks in swapped pairs (1, 0, 3, 2, ...) 100 ms after
    their images: once the first swap showed it, a pivot waits for a second mask beyond it
    and every later frame pairs (every other frame was lost)."""
    sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS)
    period = 33 * MS
    masks = [(k ^ 1) * period for k in range(20)]  # pairs swapped
    events = []
    for i in range(20):
        events += [("rgb", i * period), ("depth", i * period)]
        if i >= 3:
            events.append(("masks", masks[i - 3]))
    events += [("masks", m) for m in masks[17:]]
    emitted = [f["stamp_ns"] for f in feed(sync, events) + sync.flush()]
    assert emitted == [i * period for i in range(1, 20)]
    assert sync.unmatched == {"rgb": 1, "masks": 1, "depth": 1}  # frame 0, its swapped mask


@pytest.mark.parametrize("glitched", ["rgb", "masks", "depth"])
def test_one_stamp_in_the_future_costs_its_frame_not_all_pairing(glitched):
    """One message of one input stamped an hour ahead (a segmenter stamping its error path
    with now()): the next ones of that input, back where the others are, are no bag loop;
    pairing goes on (nothing paired again until the node was reactivated)."""
    sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS)
    period = 33 * MS
    events = [
        (name, i * period + (3600 * 10**9 if (name, i) == (glitched, 100) else 0))
        for i in range(300)
        for name in ("rgb", "depth", "masks")
    ]
    emitted = {f["stamp_ns"] for f in feed(sync, events)}
    lost = {i * period for i in range(300)} - emitted
    assert lost == {100 * period}  # (101 too, before the glitch was judged by where it was)
    assert sync.unmatched == {"rgb": 1, "masks": 1, "depth": 1}
    # a real loop of every input still restarts
    again = feed(sync, stream({"rgb": [0, period], "masks": [0, period], "depth": [0, period]}))
    assert [f["stamp_ns"] for f in again] == [0, period]


def test_a_segmenter_slower_than_the_camera_adds_no_wait():
    """Masks of every 3rd image, in order: each frame leaves when its mask comes, not one
    mask period later (the images between are hopeless at the first mask beyond them)."""
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=10 * MS)
    period = 33 * MS
    for i in range(30):
        sync.add("rgb", i * period, i)
        if i >= 4 and (i - 4) % 3 == 0:
            assert [f["stamp_ns"] for f in sync.add("masks", (i - 4) * period, i)] == [
                (i - 4) * period
            ]


def test_a_slow_cameras_frame_leaves_when_its_mask_comes_though_one_before_had_none():
    """A triggered camera at 2 Hz, each message 500 ms after the last (more than RESTART_NS):
    no jump ahead of the other inputs, so nothing is suspect; the frame whose mask never
    came is given up when the next mask passes it, and the next frame leaves at once."""
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=10 * MS)
    period = 500 * MS
    left = []
    for i in range(6):
        left.append([f["stamp_ns"] for f in sync.add("rgb", i * period, i)])
        if i != 2:
            left[-1] += [f["stamp_ns"] for f in sync.add("masks", i * period + MS, i)]
    assert left == [[0], [period], [], [3 * period], [4 * period], [5 * period]]
    assert sync.unmatched == {"rgb": 1}


def test_reset_forgets_queues_and_keeps_counters():
    sync = StampSynchronizer(["rgb", "masks"])
    feed(sync, [("rgb", 1), ("masks", 1), ("rgb", 2), ("masks", 3)])
    matched, unmatched = sync.matched, dict(sync.unmatched)
    sync.reset()
    assert sync.pending() == {"rgb": 0, "masks": 0}
    assert (sync.matched, dict(sync.unmatched)) == (matched, unmatched)
    (frame,) = feed(sync, [("rgb", 0), ("masks", 0)])  # earlier stamps are fine after a reset
    assert frame["stamp_ns"] == 0


def test_single_input_passes_everything_through():
    sync = StampSynchronizer(["rgb"])
    assert [f["stamp_ns"] for f in feed(sync, [("rgb", 3), ("rgb", 5)])] == [3, 5]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(inputs=[]), "inputs"),
        (dict(inputs=["rgb"], tolerance_ns=-1), "tolerance_ns"),
        (dict(inputs=["rgb"], queue_size=0), "queue_size"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StampSynchronizer(**kwargs)


def test_unknown_input_is_named():
    sync = StampSynchronizer(["rgb", "masks"])
    with pytest.raises(ValueError, match="'depth'"):
        sync.add("depth", 0, None)


def test_flush_pairs_the_last_pivot_without_waiting():
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=10 * MS)
    frames = feed(sync, [("rgb", 100 * MS), ("masks", 97 * MS), ("rgb", 200 * MS)])
    # the pivot at 100 waits: a later mask nearer to it could still come
    assert frames == [] and sync.pending() == {"rgb": 2, "masks": 1}
    flushed = sync.flush()
    assert pairs(flushed) == {100 * MS: {"rgb": 100 * MS, "masks": 97 * MS}}
    assert sync.unmatched == {"rgb": 1}  # the pivot at 200 has no partner at all
    assert sync.pending() == {"rgb": 0, "masks": 0}


def test_flush_emits_only_whole_frames_and_counts_what_is_left():
    """At the end of a bag: a pivot whose depth never came is no frame (unmatched), the
    partners nothing can take any more and a message held as a possible loop are counted
    unmatched too, and nothing stays pending."""
    base = 10**9
    sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS)
    events = [("rgb", base), ("masks", base), ("depth", base - 3 * MS)]  # waits: depth early
    events += [("rgb", base + 100 * MS), ("masks", base + 100 * MS)]  # its depth never comes
    events += [("masks", base - 300 * MS)]  # far behind the masks' newest: held
    assert feed(sync, events) == [] and sync.matched == 0
    frames = sync.flush()
    assert pairs(frames) == {base: {"rgb": base, "masks": base, "depth": base - 3 * MS}}
    assert sync.matched == 1
    assert sync.unmatched == {"rgb": 1, "masks": 2}  # the mask at +100 ms and the held one
    assert sync.pending() == {"rgb": 0, "masks": 0, "depth": 0}


def test_a_slow_camera_looping_with_lagging_masks_restarts_and_pairs_every_loop():
    """3 fps, each mask sent two frames after its image: the messages back in time are 333 ms
    apart, so waiting for a second one *near* the first never restarted (the second loop
    lost every frame)."""
    period = 333 * MS
    sync = StampSynchronizer(["rgb", "masks"])
    events = []
    for _ in range(2):  # two loops of the same 30 frames
        for i in range(30 + 2):
            if i < 30:
                events.append(("rgb", i * period))
            if i >= 2:
                events.append(("masks", (i - 2) * period))
    emitted = feed(sync, events) + sync.flush()
    assert len(emitted) == 60 and sum(sync.unmatched.values()) == 0


def test_pending_counts_the_old_streams_messages_until_it_retires():
    """After images loop while masks lag, the old loop's images still wait for their masks:
    `pending` (the node's queue diagnostics) counts them beside the new loop's."""
    period = 125 * MS
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=10 * MS, queue_size=30)
    for i in range(10):  # the masks three frames behind
        sync.add("rgb", i * period, f"r{i}")
        if i >= 3:
            sync.add("masks", (i - 3) * period, f"m{i - 3}")
    assert sync.pending() == {"rgb": 3, "masks": 0}  # images 7, 8, 9
    feed(sync, [("rgb", i * period) for i in range(4)])  # the loop starts again
    assert sync.pending() == {"rgb": 3 + 4, "masks": 0}
    for i, left in ((7, 6), (8, 5), (9, 4)):
        (frame,) = sync.add("masks", i * period, f"m{i}")
        assert frame["rgb"] == f"r{i}" and sync.pending() == {"rgb": left, "masks": 0}


def test_a_partner_within_tolerance_beyond_the_pivot_is_not_given_up_on():
    """An in-order input 5 ms past a pivot has not passed it for good under a 10 ms
    tolerance: its nearer next message may still come."""
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=10 * MS)
    frames = feed(
        sync, [("rgb", 99 * MS), ("rgb", 100 * MS), ("masks", 102 * MS), ("masks", 105 * MS)]
    )
    assert sorted(pairs(frames)) == [99 * MS, 100 * MS]
    assert sum(sync.unmatched.values()) == 0


def test_an_input_silent_before_a_loop_pairs_in_the_new_stream():
    """Images loop back before any mask came: the masks input belongs to the new stream at
    once (waiting for it to step back too paired nothing ever again)."""
    sync = StampSynchronizer(["rgb", "masks"])
    events = [("rgb", 1000), ("rgb", 2000), ("rgb", 0), ("rgb", 100)]
    events += [("masks", 0), ("masks", 100), ("rgb", 200), ("masks", 200)]
    frames = feed(sync, [(name, t * MS) for name, t in events])
    assert [f["stamp_ns"] // MS for f in frames] == [0, 100, 200]


def _masks_one_frame_behind() -> list[tuple[str, int]]:
    """Images at 0-1000 ms every 100 ms, each mask sent with the next image (stamps in ms)."""
    events = []
    for t in range(0, 1001, 100):
        events.append(("rgb", t))
        if t >= 100:
            events.append(("masks", t - 100))
    return events


def test_an_image_held_back_there_is_dropped_when_the_images_go_on():
    """One image stamped back at a loop's start, then images go on where they were: the held
    one was late (counted unmatched), and it does not start a loop with the next message far
    back from it."""
    sync = StampSynchronizer(["rgb", "masks"])
    events = _masks_one_frame_behind()
    events += [("rgb", 0), ("rgb", 1100), ("masks", 1000), ("masks", 1100)]
    frames = feed(sync, [(name, t * MS) for name, t in events])
    assert [f["stamp_ns"] // MS for f in frames][-3:] == [900, 1000, 1100]
    assert sync.unmatched == {"rgb": 1}
    frames = feed(sync, [("masks", 0), ("rgb", 1200 * MS), ("masks", 1200 * MS)])
    assert [f["stamp_ns"] // MS for f in frames] == [1200]


def test_a_loop_starting_while_the_masks_finish_the_old_one_loses_no_frame():
    """Images step back to 0 while the last mask of the old loop is still to come: the image
    held back there is not taken for a late one by that mask."""
    sync = StampSynchronizer(["rgb", "masks"])
    events = _masks_one_frame_behind()
    events += [("rgb", 0), ("masks", 1000), ("rgb", 100), ("masks", 0), ("rgb", 200)]
    events += [("masks", 100)]
    frames = feed(sync, [(name, t * MS) for name, t in events])
    assert [f["stamp_ns"] // MS for f in frames][-3:] == [1000, 0, 100]
    assert sum(sync.unmatched.values()) == 0


def test_an_older_partner_arriving_late_does_not_lower_how_far_its_input_got():
    """Masks 110 then 105: the masks input has reached 110, so the image at 108 pairs at once
    with its nearest, 110, instead of waiting for a mask past 108."""
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=5 * MS)
    (frame,) = feed(sync, [("masks", 110 * MS), ("masks", 105 * MS), ("rgb", 108 * MS)])
    assert frame["masks"] == ("masks", 110 * MS)


def test_the_old_stream_retires_when_its_last_input_steps_back():
    """A loop: images step back first, masks last; the old stream's last image (1000) pairs
    with its mask (980) once the masks step back too, and the count of matched frames holds
    the old stream's frames."""
    sync = StampSynchronizer(["rgb", "masks"], tolerance_ns=50 * MS)
    frames = feed(sync, [("rgb", 900 * MS), ("masks", 900 * MS), ("rgb", 1000 * MS)])
    frames += feed(sync, [("rgb", 0), ("rgb", 100 * MS), ("masks", 980 * MS), ("masks", 0)])
    assert [f["stamp_ns"] // MS for f in frames] == [900, 1000, 0]
    assert frames[1]["masks"] == ("masks", 980 * MS)
    assert sync.matched == 3


def test_an_image_250_ms_late_still_pairs_while_the_masks_lag():
    """A step back of up to 250 ms (RESTART_NS), that much included, is a message out of
    order, not a loop: an image a driver delivers 250 ms late takes its place and pairs with
    its mask, which comes later (held as a possible loop, it was dropped when the next image
    went on)."""
    period = 50 * MS
    sync = StampSynchronizer(["rgb", "masks"], queue_size=100)
    rgb = [i * period for i in range(40)]
    rgb.remove(10 * period)
    rgb.insert(rgb.index(15 * period) + 1, 10 * period)  # 250 ms behind the newest image
    events = [("rgb", s) for s in rgb] + [("masks", i * period) for i in range(40)]
    emitted = [f["stamp_ns"] for f in feed(sync, events)]
    assert emitted == [i * period for i in range(40)]
    assert sum(sync.unmatched.values()) == 0


def test_a_clip_260_ms_long_looping_restarts_every_loop():
    """A step back of more than 250 ms (RESTART_NS) taken by every input is a new stream: a
    clip of five frames 65 ms apart, played three times, pairs every frame of every loop
    (taken for messages out of order, each loop's frames were late ones, counted unmatched)."""
    period = 65 * MS
    played = [i * period for i in range(5)] * 3  # each loop steps back 260 ms
    sync = StampSynchronizer(["rgb", "masks"])
    emitted = feed(sync, [(name, s) for s in played for name in ("rgb", "masks")])
    emitted += sync.flush()
    assert [f["stamp_ns"] for f in emitted] == played
    assert sum(sync.unmatched.values()) == 0


def test_masks_swapped_after_the_images_looped_still_pair_with_the_old_loop():
    """A thread-pool segmenter five frames behind its images swaps two masks (7, 6) of the old
    loop after the images looped: that step back of one frame is a message out of order in the
    old stream, not the masks stepping back into the new one (which ended the old stream early
    and lost every frame of the new loop)."""
    period = 125 * MS
    sync = StampSynchronizer(["rgb", "masks"], queue_size=30)
    masks = [0, 1, 2, 3, 4, 5, 7, 6, 8, 9] + list(range(10))  # two loops, one swap in the first
    events = []
    for i in range(20):
        events.append(("rgb", (i % 10) * period))
        if i >= 5:
            events.append(("masks", masks[i - 5] * period))
    events += [("masks", k * period) for k in masks[15:]]
    emitted = [f["stamp_ns"] // period for f in feed(sync, events) + sync.flush()]
    assert emitted == [0, 1, 2, 3, 4, 5, 7, 8, 9] + list(range(10))  # 6: the first swap's cost
    assert sync.unmatched == {"rgb": 1, "masks": 1}


@pytest.mark.parametrize("glitched", ["rgb", "depth"])
def test_an_image_stamped_in_the_future_costs_its_frame_while_the_masks_lag(glitched):
    """One image (or depth image) stamped an hour ahead while the segmenter's masks lag 330 ms
    behind: the next one, back where the other camera input is, shows the glitch; only its
    frame is lost (judged by the lagging masks' newest stamp, it looked like a loop that no
    other input followed, and nothing paired again)."""
    sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS, queue_size=100)
    period, lag = 33 * MS, 10

    def stamp(name, i):
        return i * period + (3600 * 10**9 if (name, i) == (glitched, 100) else 0)

    events = []
    for i in range(200 + lag):
        if i < 200:
            events += [("rgb", stamp("rgb", i)), ("depth", stamp("depth", i))]
        if i >= lag:
            events.append(("masks", stamp("masks", i - lag)))
    emitted = {f["stamp_ns"] for f in feed(sync, events) + sync.flush()}
    assert {i * period for i in range(200)} - emitted == {100 * period}


def test_a_mask_stamped_in_the_future_costs_its_frame_while_the_masks_lag():
    """The docstring's own case, with a segmenter 330 ms behind its images: one mask stamped an
    hour ahead (its error path stamped with now()). The next mask, back where the masks were
    but 330 ms behind the images, looked like a loop no other input followed: the masks
    restarted alone and nothing paired again (100 of 200 frames); and every frame waiting for
    a mask was given up as passed by the glitch."""
    sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS, queue_size=100)
    period, lag = 33 * MS, 10
    events = []
    for i in range(200 + lag):
        if i < 200:
            events += [("rgb", i * period), ("depth", i * period)]
        if i >= lag:
            k = i - lag
            events.append(("masks", k * period + (3600 * 10**9 if k == 100 else 0)))
    emitted = {f["stamp_ns"] for f in feed(sync, events) + sync.flush()}
    assert {i * period for i in range(200)} - emitted == {100 * period}
    assert sync.unmatched == {"rgb": 1, "masks": 1, "depth": 1}


def test_every_input_jumping_ahead_together_goes_on_pairing():
    """Sim time skipping 10 s ahead (a bag of a later recording played next): each input's
    first message there is suspect until its second confirms it; no frame is lost, and past
    the jump a frame whose mask never comes is given up as before, once the masks pass it."""
    sync = StampSynchronizer(["rgb", "masks", "depth"], tolerance_ns=10 * MS)
    period = 33 * MS
    stamps = [i * period + (10**10 if i >= 50 else 0) for i in range(100)]
    events = [
        (name, t)
        for i, t in enumerate(stamps)
        for name in ("rgb", "depth", "masks")
        if (name, i) != ("masks", 70)
    ]
    emitted = [f["stamp_ns"] for f in feed(sync, events)]
    assert emitted == stamps[:70] + stamps[71:]
    assert sync.unmatched == {"rgb": 1, "depth": 1}


def test_depth_older_than_an_image_given_up_is_counted_at_once():
    """The images stop after one that no depth image matches (the depth camera 30 ms off): the
    depth images older than it, which no image can take any more, are counted unmatched then,
    not shown waiting in the queue diagnostics until an image that may never come."""
    sync = StampSynchronizer(["rgb", "depth"], tolerance_ns=10 * MS)
    events = [("rgb", 0), ("depth", 0), ("depth", 170 * MS), ("depth", 230 * MS)]
    assert len(feed(sync, events)) == 1
    assert feed(sync, [("rgb", 200 * MS)]) == []  # hopeless: depth went past it
    assert sync.pending() == {"rgb": 0, "depth": 1}  # 230 may still pair with a later image
    assert sync.unmatched == {"rgb": 1, "depth": 1}
