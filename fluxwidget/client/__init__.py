"""fal's queue protocol for flux-lora: `FluxClient`, request handles, status updates, retries,
limits, uploads to fal's storage, the journal, the client contract."""

from .config import ClientConfig, key_from_environment
from .core import FluxClient
from .handle import RequestHandle
from .journal import Journal
from .limits import Limits
from .protocols import ClientSettings, HandleBackend, JobClient, JobHandle
from .retries import RetryPolicy
from .status import Completed, InProgress, LogEntry, Queued, StatusUpdate, Waiting
from .uploads import UploadCache, UploadOptions

__all__ = [
    "ClientConfig",
    "ClientSettings",
    "Completed",
    "FluxClient",
    "HandleBackend",
    "InProgress",
    "JobClient",
    "JobHandle",
    "Journal",
    "Limits",
    "LogEntry",
    "Queued",
    "RequestHandle",
    "RetryPolicy",
    "StatusUpdate",
    "UploadCache",
    "UploadOptions",
    "Waiting",
    "key_from_environment",
]
