"""Small, runnable examples of consuming amodal_ros outputs (shown in the README, run by tests)."""
