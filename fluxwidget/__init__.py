"""fluxwidget: a notebook-native playground for FLUX LoRA (``fal-ai/flux-lora``) on fal.

The public names, errors included; nothing else. The widgets (`FluxPanel`, `sweep`) and the
emulator are imported on first use, so ``import fluxwidget`` stays light for scripts and the CLI.
The layers below (``client``, ``store``, ``pipeline``, ``sweeps``, ``ui``, ``cli``, ``emulator``)
are described in docs/architecture.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import FluxClient
from .connect import choose_client, default_client, emulator_client
from .errors import (
    AccountLockedError,
    AuthenticationError,
    CostNotConfirmed,
    DiskFullError,
    DownloadTooSlowError,
    FalError,
    FieldProblem,
    FluxwidgetError,
    ForbiddenError,
    GenerationTimeout,
    ImageGoneError,
    InputError,
    JobCancelledError,
    MissingKeyError,
    NotFoundError,
    PaymentRequiredError,
    ProtocolError,
    RateLimitError,
    RatingError,
    RequestTimeoutError,
    ResponseTooLargeError,
    ResultExpiredError,
    ResultNotReadyError,
    RunFolderBusy,
    RunFolderError,
    ServerError,
    StorageError,
    SweepError,
    SweepFolderMismatch,
    TransportError,
    UnsafeURLError,
    UploadsUnavailableError,
    ValidationFailedError,
)
from .schema import (
    FluxLoraInput,
    FluxLoraOutput,
    ImageSize,
    ImageToImageInput,
    InpaintingInput,
    LoraWeight,
)
from .sweeps.results import RunResults, load_run
from .sweeps.run import SweepRun

if TYPE_CHECKING:
    from .emulator import Emulator
    from .ui import FluxPanel
    from .ui.blind_ab import blind_ab
    from .ui.sweep import sweep

__all__ = [
    "AccountLockedError",
    "AuthenticationError",
    "CostNotConfirmed",
    "DiskFullError",
    "DownloadTooSlowError",
    "Emulator",
    "FalError",
    "FieldProblem",
    "FluxClient",
    "FluxLoraInput",
    "FluxLoraOutput",
    "FluxPanel",
    "FluxwidgetError",
    "ForbiddenError",
    "GenerationTimeout",
    "ImageGoneError",
    "ImageSize",
    "ImageToImageInput",
    "InpaintingInput",
    "InputError",
    "JobCancelledError",
    "LoraWeight",
    "MissingKeyError",
    "NotFoundError",
    "PaymentRequiredError",
    "ProtocolError",
    "RateLimitError",
    "RatingError",
    "RequestTimeoutError",
    "ResponseTooLargeError",
    "ResultExpiredError",
    "ResultNotReadyError",
    "RunFolderBusy",
    "RunFolderError",
    "RunResults",
    "ServerError",
    "StorageError",
    "SweepError",
    "SweepFolderMismatch",
    "SweepRun",
    "TransportError",
    "UnsafeURLError",
    "UploadsUnavailableError",
    "ValidationFailedError",
    "blind_ab",
    "choose_client",
    "default_client",
    "emulator_client",
    "load_run",
    "sweep",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The heavy names, imported on first use (widgets, the emulator's server)."""
    if name == "FluxPanel":
        from .ui import FluxPanel

        return FluxPanel
    if name == "sweep":
        from .ui.sweep import sweep

        return sweep
    if name == "blind_ab":
        from .ui.blind_ab import blind_ab

        return blind_ab
    if name == "Emulator":
        from .emulator import Emulator

        return Emulator
    raise AttributeError(f"module 'fluxwidget' has no attribute {name!r}")
