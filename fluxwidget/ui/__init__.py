"""Widgets only: the FluxPanel and the parts it is built from."""

from .gallery import ImageGallery
from .panel import FluxPanel
from .sweep_grid import SweepGrid

__all__ = ["FluxPanel", "ImageGallery", "SweepGrid"]
