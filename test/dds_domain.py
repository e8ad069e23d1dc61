"""A DDS domain id of the test run's own (imported by conftest before anything talks DDS)."""

from __future__ import annotations

import fcntl

_LOCKS: list = []  # held until the process ends


def claim_domain(preferred: int) -> int:
    """A DDS domain id no other test run on this host holds (a lock file kept for the
    process): two runs at once on one id heard each other's topics and failed."""
    for domain in (preferred, *range(102, 232)):  # 232: the last id Fast DDS's ports allow
        lock = open(f"/tmp/amodal_ros_test_domain_{domain}.lock", "w")  # noqa: SIM115
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            continue
        _LOCKS.append(lock)
        return domain
    raise RuntimeError("no free DDS domain id for the tests (102-231 all held)")
