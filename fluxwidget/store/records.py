"""What one job is and leaves behind: the record written in the manifest and in every image.

One format everywhere: the panel, the CLI, `recover` and sweeps all write `JobRecord`s. A record
holds the full input, the seed the server actually used, the request id, the endpoint, timings,
NSFW flags, whether the emulator made it, and the files its images were saved to (relative to
its run folder). `image_metadata` is what goes into each image file (PNG text chunk / JPEG
comment), so an image alone is enough to make it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ..schema import INPUT_MODELS, FluxLoraInput, validate_input

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "KNOWN_STATES",
    "JobRecord",
    "JobState",
    "SavedImage",
    "record_input",
]

JobState = Literal[
    "pending",  # planned, nothing sent
    "submitting",  # a submit is in flight (it may be accepted even if we never hear back)
    "queued",
    "running",
    "fetching",  # completed on the server; result and images being collected
    "done",  # every image is on disk
    "error",  # failed; `final` says whether collecting it again could succeed
    "cancelled",
    "unknown",  # a submit was in flight when the process stopped: it may have been billed
]
KNOWN_STATES: frozenset[str] = frozenset(get_args(JobState))
FINAL_STATES: frozenset[str] = frozenset({"done", "cancelled"})
"""States after which a job is never touched again (an error may still be collected)."""
ACTIVE_STATES: frozenset[str] = frozenset({"submitting", "queued", "running", "fetching"})


@dataclass
class SavedImage:
    """One image on disk: `file` is relative to the run folder; `url` where it came from."""

    index: int
    file: str
    width: int | None = None
    height: int | None = None
    content_type: str | None = None
    nsfw: bool = False
    url: str | None = None  # None for inline data: URIs (they are not kept)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SavedImage:
        """Read back what `asdict` wrote (unknown keys are ignored)."""
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


@dataclass
class JobRecord:
    """One job of a run: what was asked, what the server said, and where its images are."""

    job_id: str
    input: dict[str, Any]
    endpoint: str
    state: str = "pending"
    request_id: str | None = None
    seed: int | None = None
    emulator: bool = False
    image_urls: list[str] = field(default_factory=list)
    images: list[SavedImage] = field(default_factory=list)
    nsfw: list[bool] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    billable_units: float | None = None
    error: str | None = None
    error_type: str | None = None
    final: bool = False  # an error that collecting again cannot fix (422, expired, ...)
    axes: dict[str, Any] = field(default_factory=dict)
    coords: list[int] | None = None
    detail: str = ""  # the last status line ("Queued — position 3", "Running — step 4/28")
    cancel_answer: str | None = None  # what the server answered a cancel (CANCELLATION_REQUESTED)
    uploads: dict[str, str] = field(default_factory=dict)
    """Local files the input names (LoRA paths) → the URLs they were uploaded to and sent as;
    `input` keeps the local paths."""

    @property
    def done(self) -> bool:
        """True once every image is on disk."""
        return self.state == "done"

    @property
    def collectable(self) -> bool:
        """Submitted, not finished, not lost for good: recovery should collect it."""
        return (
            self.request_id is not None
            and self.state not in FINAL_STATES
            and not (self.state == "error" and self.final)
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the manifest's row for this job). Every container the job changes
        in place is copied, so the dict can be serialised in another thread; `input` is never
        changed after planning and is shared. Ints beyond 64 bits stay exact in JSON."""
        data = dict(vars(self))
        data["images"] = [dict(vars(image)) for image in self.images]
        data["image_urls"] = list(self.image_urls)
        data["nsfw"] = list(self.nsfw)
        data["timings"] = dict(self.timings)
        data["axes"] = dict(self.axes)
        data["uploads"] = dict(self.uploads)
        if self.coords is not None:
            data["coords"] = list(self.coords)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobRecord:
        """Read back `to_json` output; unknown keys are ignored, bad rows raise ValueError."""
        if not isinstance(data, dict) or "job_id" not in data:
            raise ValueError("a job record needs a job_id")
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        known["images"] = [SavedImage.from_json(item) for item in data.get("images") or []]
        known.setdefault("input", {})
        known.setdefault("endpoint", "")
        uploads = data.get("uploads")
        known["uploads"] = (
            {str(k): str(v) for k, v in uploads.items()} if isinstance(uploads, dict) else {}
        )
        return cls(**known)

    def image_metadata(self, index: int, run: str) -> dict[str, Any]:
        """The record embedded in image `index`'s file: enough to make the image again (with
        the URLs local files were uploaded to, when there were any)."""
        metadata: dict[str, Any] = {
            "fluxwidget": 1,
            "run": run,
            "job_id": self.job_id,
            "index": index,
            "endpoint": self.endpoint,
            "request_id": self.request_id,
            "input": self.input,
            "seed": self.seed,
            "nsfw": self.nsfw[index] if index < len(self.nsfw) else False,
            "emulator": self.emulator,
            "timings": self.timings,
            "axes": self.axes,
        }
        if self.uploads:
            metadata["uploads"] = dict(self.uploads)
        return metadata

    @property
    def input_model(self) -> type[FluxLoraInput] | None:
        """The input model of the record's endpoint (`INPUT_MODELS`), or None for an endpoint
        outside the flux-lora family (a proxy's path: the fields then choose the model)."""
        return INPUT_MODELS.get(self.endpoint)

    def reuse_input(self) -> dict[str, Any]:
        """The input with the seed actually used, to make the same images again."""
        payload = dict(self.input)
        if self.seed is not None:
            payload["seed"] = self.seed
        return payload


def record_input(record: JobRecord) -> FluxLoraInput:
    """The record's input validated as the model of its endpoint (an image-to-image record
    stays image-to-image), or InputError."""
    return validate_input(record.input, model=record.input_model)
