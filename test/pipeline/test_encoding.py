"""The conditioning encoders against diffusers' Stable Video Diffusion pipeline, which the
reference runs: CLIP and VAE preprocessing must match it exactly, or a published checkpoint
sees other inputs than it was trained on."""

import numpy as np
import pytest
import torch
from conftest import tiny_components
from diffusers import EulerDiscreteScheduler, StableVideoDiffusionPipeline
from PIL import Image
from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

from amodal_ros.core.config import InferenceConfig
from amodal_ros.models.components import CLIP_MEAN, CLIP_STD
from amodal_ros.pipeline.cache import stable_seed
from amodal_ros.pipeline.encoding import ConditionEncoder

H, W = 64, 128  # a working size that CLIP's 224-px input resizes up from


@pytest.fixture(scope="module")
def svd():
    """Tiny real models in diffusers' SVD pipeline, its CLIP at SVD's 224-px input."""
    components = tiny_components(seed=3)
    torch.manual_seed(3)
    tiny = components.image_encoder.config.to_dict()
    clip = CLIPVisionConfig(**{**tiny, "image_size": 224, "patch_size": 32})  # SVD's input
    components.image_encoder = CLIPVisionModelWithProjection(clip).eval()
    pipe = StableVideoDiffusionPipeline(
        vae=components.vae,
        image_encoder=components.image_encoder,
        unet=components.unet,
        scheduler=EulerDiscreteScheduler(),
        feature_extractor=CLIPImageProcessor(image_mean=CLIP_MEAN, image_std=CLIP_STD),
    )
    return components, pipe


def picture(seed):
    """An RGB image with structure at every scale, as uint8 and as the encoder's [-1, 1]."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
    image = np.kron(coarse, np.ones((8, 8, 1), dtype=np.uint8))
    image[::3] = rng.integers(0, 256, image[::3].shape, dtype=np.uint8)
    pixels = image.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
    return Image.fromarray(image), pixels


def encoder(components, **config):
    return ConditionEncoder(components, InferenceConfig(**config), "cpu", torch.float32)


def test_clip_embeddings_match_svds_image_encoding(svd):
    components, pipe = svd
    images, pixels = zip(*(picture(seed) for seed in range(2)))
    ours = encoder(components).clip_embed(np.stack(pixels))
    with torch.no_grad():
        theirs = [pipe._encode_image(im, "cpu", 1, False)[:, 0] for im in images]
    torch.testing.assert_close(ours, torch.cat(theirs), rtol=1e-4, atol=1e-5)


def test_vae_latents_match_svds_noise_augmented_image_latents(svd):
    components, pipe = svd
    strength, seed = 0.02, 5
    image, pixels = picture(7)
    ours = encoder(components, noise_aug_strength=strength, seed=seed).vae_encode(
        "mask", "object 1", [123], pixels[None]
    )
    # SVD's __call__: preprocess, add strength x unit normal noise, encode the posterior mode
    # unscaled; the noise is ours (seeded per object and frame), drawn as a unit normal
    generator = torch.Generator().manual_seed(stable_seed(seed, "aug", "mask", "object 1", 123))
    noise = torch.randn((3, H, W), generator=generator)[None]
    augmented = pipe.video_processor.preprocess(image, height=H, width=W) + strength * noise
    with torch.no_grad():
        theirs = pipe._encode_vae_image(augmented, "cpu", 1, False)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)


def test_each_object_gets_its_own_augmentation_noise(svd):
    """Like the reference's one pipeline call per object: two objects with the same masks in the
    same frames are augmented with independent noise, not one shared draw."""
    components, _ = svd
    _, pixels = picture(9)
    encode = encoder(components, noise_aug_strength=0.5).vae_encode
    first, again, other = (
        encode("mask", obj, [10, 11], np.stack([pixels, pixels])) for obj in (1, 1, 2)
    )
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other, atol=1e-3)
    assert not torch.allclose(first[0], first[1], atol=1e-3)  # and each frame its own
