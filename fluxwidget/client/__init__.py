"""fal's queue protocol for flux-lora: `FluxClient`, request handles, status updates, retries,
limits."""

from .config import ClientConfig, key_from_environment
from .core import FluxClient
from .handle import ClientPort, RequestHandle
from .limits import Limits
from .retries import RetryPolicy
from .status import Completed, InProgress, LogEntry, Queued, StatusUpdate, Waiting

__all__ = [
    "ClientConfig",
    "ClientPort",
    "Completed",
    "FluxClient",
    "InProgress",
    "Limits",
    "LogEntry",
    "Queued",
    "RequestHandle",
    "RetryPolicy",
    "StatusUpdate",
    "Waiting",
    "key_from_environment",
]
