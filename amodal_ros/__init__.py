"""amodal_ros: video amodal segmentation (Diffusion-VAS) for ROS 2 robots."""

__version__ = "0.1.0"

# The colcon install holds the generated `amodal_ros.msg` beside this library; when the source
# folder shadows it on sys.path (running from the repository root), still find `msg` there.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
