"""Widgets only: the FluxPanel and the parts it is built from."""

from .panel import FluxPanel

__all__ = ["FluxPanel"]
