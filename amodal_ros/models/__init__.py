"""Construction and loading of the Diffusion-VAS UNet, VAE, CLIP encoder and scheduler."""

from amodal_ros.models.loading import VasComponents, load_components
from amodal_ros.models.unet import PerFrameUNet

__all__ = ["PerFrameUNet", "VasComponents", "load_components"]
