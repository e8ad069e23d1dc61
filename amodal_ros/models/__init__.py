"""Construction and loading of the Diffusion-VAS UNet, VAE, CLIP encoder and scheduler."""

from amodal_ros.models.components import VasComponents
from amodal_ros.models.layout import load_components, save_published_layout

__all__ = ["VasComponents", "load_components", "save_published_layout"]
