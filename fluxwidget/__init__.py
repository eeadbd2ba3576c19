"""fluxwidget: a notebook-native playground for FLUX LoRA (``fal-ai/flux-lora``) on fal.

The widgets and the emulator are imported on first use, so ``import fluxwidget`` stays light
for scripts and the CLI. ``fluxwidget.sweep`` is the `sweep` function; its package's modules
are imported by their full names (``fluxwidget.sweep.axes``, ...).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import FluxClient
from .defaults import default_client, emulator_client
from .schema import FluxLoraInput, FluxLoraOutput, ImageSize, LoraWeight
from .sweep.api import SweepRun, sweep  # binds `fluxwidget.sweep` to the function

if TYPE_CHECKING:
    from .emulator import Emulator
    from .ui import FluxPanel

__all__ = [
    "Emulator",
    "FluxClient",
    "FluxLoraInput",
    "FluxLoraOutput",
    "FluxPanel",
    "ImageSize",
    "LoraWeight",
    "SweepRun",
    "default_client",
    "emulator_client",
    "sweep",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "FluxPanel":
        from .ui import FluxPanel

        return FluxPanel
    if name == "Emulator":
        from .emulator import Emulator

        return Emulator
    raise AttributeError(f"module 'fluxwidget' has no attribute {name!r}")
