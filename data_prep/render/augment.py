"""Augmentation of rendered formulas through albumentations: blur, noise, ink bleed, JPEG, small
rotation and elastic distortion (a handwriting-like wobble), seeded per image.

The page is filled with white where a transform uncovers it, so the image stays dark ink on a light
page (the shared contract).
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image


@functools.cache
def _pipeline():
    import albumentations as A
    import cv2

    return A.Compose(
        [
            A.Rotate(limit=3, border_mode=cv2.BORDER_CONSTANT, fill=255, p=0.5),
            A.ElasticTransform(alpha=8, sigma=4, border_mode=cv2.BORDER_CONSTANT, fill=255, p=0.3),
            A.Morphological(scale=(2, 3), operation="erosion", p=0.2),  # erosion of white = ink bleed
            A.GaussianBlur(blur_limit=(3, 3), p=0.3),
            A.GaussNoise(std_range=(0.01, 0.05), p=0.3),
            A.ImageCompression(quality_range=(50, 95), p=0.3),
        ]
    )


def augment(image: Image.Image, seed: int) -> Image.Image:
    """``image`` (mode ``L``) augmented deterministically under ``seed``."""
    pipeline = _pipeline()
    pipeline.set_random_seed(seed)
    out = pipeline(image=np.asarray(image.convert("L")))["image"]
    return Image.fromarray(out, "L")
