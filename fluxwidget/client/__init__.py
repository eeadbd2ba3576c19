"""fal's queue protocol for flux-lora: `FluxClient`, request handles, status updates, retries."""

from .config import ClientConfig, key_from_environment
from .core import FluxClient
from .handle import RequestHandle
from .retries import RetryPolicy
from .status import Completed, InProgress, LogEntry, Queued, StatusUpdate

__all__ = [
    "ClientConfig",
    "Completed",
    "FluxClient",
    "InProgress",
    "LogEntry",
    "Queued",
    "RequestHandle",
    "RetryPolicy",
    "StatusUpdate",
    "key_from_environment",
]
