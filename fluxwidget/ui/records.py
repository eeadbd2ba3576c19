"""What the panel keeps of a finished job: its input, fal's output, thumbnails and files."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..schema import ENDPOINT_ID, FluxLoraInput, FluxLoraOutput
from ..store.records import JobRecord

__all__ = ["ImageRecord", "RunRecord"]


@dataclass(frozen=True)
class ImageRecord:
    """One image: its thumbnail (sent to the browser) and its file; `data` is empty once the
    image is saved (full images live on disk)."""

    index: int
    data: bytes = field(repr=False)
    thumbnail: bytes = field(repr=False)
    width: int
    height: int
    content_type: str | None = None
    nsfw: bool = False
    path: str | None = None
    """The saved file (the full image is read from it on demand, not kept in memory)."""


@dataclass(frozen=True)
class RunRecord:
    """A finished run of the panel: number, input, output, images and timing."""

    number: int
    params: FluxLoraInput
    output: FluxLoraOutput
    images: tuple[ImageRecord, ...]
    request_id: str
    elapsed: float
    endpoint: str = ENDPOINT_ID
    job: JobRecord | None = None
    """The pipeline's record of the job (the manifest row), when it ran through the pipeline."""

    @property
    def seed(self) -> int | None:
        """The seed the server used (the one to reuse to get the same images)."""
        return self.output.seed if self.output.seed is not None else self.params.seed
