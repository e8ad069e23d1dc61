"""Rosbag tools without a ROS install (rosbags, pure Python): a synthetic demo bag and an
offline, deterministic replay of a recorded bag through the node's streaming pipeline.

    amodal-ros demo-bag demo_bag                  # bags.demo_bag.write_demo_bag
    amodal-ros replay demo_bag --out results_bag  # bags.replay.run
"""
