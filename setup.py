"""pip install of the amodal_ros library and its command-line tools (no ROS build needed).

In a pip-only install `amodal_ros.msg` is absent; build the package with colcon
(scripts/setup.sh) for the ROS messages and node. The .msg definitions are installed where a
ROS package keeps them (PREFIX/share/amodal_ros/msg), so replay and demo can register the
message types with rosbags.
"""

from setuptools import find_packages, setup

setup(
    name="amodal_ros",
    version="0.1.0",
    description="Video amodal segmentation (Diffusion-VAS) for ROS 2 robots",
    license="Apache-2.0",
    license_files=["LICENSE"],
    maintainer="amodal_ros maintainers",
    maintainer_email="amodal-ros@example.com",
    python_requires=">=3.10",
    packages=find_packages(include=["amodal_ros", "amodal_ros.*"]),
    # the embedded default model (safetensors + configs + model card)
    package_data={
        "amodal_ros.models": [
            "embedded/*.md",
            "embedded/*.json",
            "embedded/*/*.json",
            "embedded/*/*/*",
        ]
    },
    data_files=[("share/amodal_ros/msg", ["msg/AmodalObject.msg", "msg/AmodalObjectArray.msg"])],
    install_requires=[
        "numpy",
        "scipy",
        "opencv-python-headless",
        "pillow",
        "pyyaml",
        "tqdm",
        "safetensors",
    ],
    extras_require={
        # torch is not pinned here: robots want their CUDA build. For CPU use torch==2.13.0.
        "inference": ["torch>=2.6", "diffusers>=0.30", "transformers>=4.40", "accelerate"],
        "bags": ["rosbags"],
        "onnx": ["onnx", "onnxruntime"],
        "fp8": ["torchao==0.18.0"],  # quantize: fp8 (fp8 matmuls on Hopper/Ada GPUs)
        "ray": ["ray>=2.40"],  # replay-many: many bags in parallel, on one machine or a cluster
    },
    entry_points={
        "console_scripts": [
            "amodal-ros=amodal_ros.cli.main:main",
            "amodal-ros-node=amodal_ros.ros.main:main",
        ]
    },
)
