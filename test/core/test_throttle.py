from amodal_ros.core.throttle import Throttle


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_kind_is_said_at_once_then_once_a_period_with_the_count_since():
    clock = Clock()
    t = Throttle(5.0, clock)
    assert t.due("camera silent") == 1
    clock.now += 1
    assert t.due("camera silent") is None and t.due("camera silent") is None
    assert t.due("bad frame") == 1  # another kind is not held back by the first
    clock.now += 4
    assert t.due("camera silent") == 3  # the two held back and this one
    clock.now += 4.9
    assert t.due("camera silent") is None


def test_amounts_add_up_to_what_is_reported():
    clock = Clock()
    t = Throttle(5.0, clock)
    assert t.due("lost", 2) == 2
    clock.now += 1
    assert t.due("lost", 7) is None
    clock.now += 5
    assert t.due("lost", 3) == 10


def test_a_report_says_how_many_it_stands_for_besides_itself():
    assert Throttle.repeats(1) == ""  # the first of its kind, or the only one in a period
    assert Throttle.repeats(3) == " (2 more like this since the last report)"
