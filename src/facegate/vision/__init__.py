"""Pixels to templates: decode, detect, align, assess quality, embed.

This package imports nothing else of facegate but `facegate.errors`: it is the bottom
of the house, usable on its own.
"""

from facegate.vision.image import ImageLimits, decode_image, load_image, read_image_file
from facegate.vision.pipeline import Pipeline, PipelineConfig
from facegate.vision.types import Box, Face, Quality, QualityFilter

__all__ = [
    "Box",
    "Face",
    "ImageLimits",
    "Pipeline",
    "PipelineConfig",
    "Quality",
    "QualityFilter",
    "decode_image",
    "load_image",
    "read_image_file",
]
