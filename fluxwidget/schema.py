"""The `fal-ai/flux-lora` input and output models: the single source of truth.

Field titles, descriptions, ranges and defaults live here. The panel builds its controls from
these models, the client validates with them before sending, and the emulator validates with them
as the real server would.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from .errors import FieldProblem as FieldProblem
from .errors import InputError as InputError

ENDPOINT_ID = "fal-ai/flux-lora"

ImageSizePreset = Literal[
    "square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"
]
PRESET_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
assert set(PRESET_SIZES) == set(get_args(ImageSizePreset))

MAX_SIDE = 14142
"""Largest custom width or height fal accepts."""

LORA_SCALE_UI_RANGE = (0.0, 4.0)
"""fal documents no range for a LoRA scale; this is the range other frontends offer."""

OutputFormat = Literal["jpeg", "png"]
Acceleration = Literal["none", "regular"]


class ImageSize(BaseModel):
    """A custom image size in pixels."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int = Field(512, ge=1, le=MAX_SIDE, title="Width", description="Width in pixels.")
    height: int = Field(512, ge=1, le=MAX_SIDE, title="Height", description="Height in pixels.")


LORA_PATH_FORMS = (
    "an http(s) URL, a Hugging Face repo id (owner/name, optionally owner/name/file), "
    "or an existing local file"
)
"""The accepted forms of a LoRA path, in words (shared by the panel, the client and the CLI)."""

_URL = re.compile(r"https?://[^\s/?#]+[^\s]*", re.IGNORECASE)
_HF_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_HF_REPO = re.compile(rf"{_HF_PART}/{_HF_PART}(/[^\s]+)?")


LoraPathKind = Literal["url", "repo", "other"]


def lora_path_kind(path: str) -> LoraPathKind:
    """What a LoRA path looks like, by its text alone (no file system access): an http(s)
    ``url``, a Hugging Face ``repo`` id (owner/name[/file]), or ``other`` (a local path, another
    scheme, nonsense). A server can fetch the first two; it can never read ``other``."""
    text = path.strip()
    if _URL.fullmatch(text):
        return "url"
    if "://" not in text and not text.startswith(("/", "~", ".")) and _HF_REPO.fullmatch(text):
        return "repo"
    return "other"


def _accepted_when(problem_of: Callable[[str], str | None]) -> AfterValidator:
    """A string validator: `problem_of` says what is wrong (or None); kept values are stripped."""

    def accepted(value: str) -> str:
        problem = problem_of(value)
        if problem is not None:
            raise ValueError(problem)
        return value.strip()

    return AfterValidator(accepted)


def lora_path_problem(path: str) -> str | None:
    """None when `path` is one of LORA_PATH_FORMS, else why not (in words)."""
    text = path.strip()
    if not text:
        return "must not be blank"
    if lora_path_kind(text) != "other":
        return None
    try:
        if Path(text).expanduser().is_file():
            return None
    except OSError:
        pass
    return f"must be {LORA_PATH_FORMS}"


LoraPath = Annotated[str, _accepted_when(lora_path_problem)]
"""A LoRA weights path fal can download (or a local file to upload first)."""


class LoraWeight(BaseModel):
    """One LoRA to apply: where its weights are, and how strongly."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: LoraPath = Field(
        min_length=1,
        title="LoRA path",
        description="URL, Hugging Face repository (owner/name[/file]) or local file of the "
        "LoRA weights.",
    )
    scale: float = Field(
        1.0,
        title="LoRA scale",
        description="How strongly the LoRA is applied (commonly 0–4).",
    )
    force: bool | None = Field(
        None,
        title="Force",
        description="fal's optional `force` flag of a LoRA (sent only when set).",
    )

    @field_validator("scale")
    @classmethod
    def _scale_finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class FluxLoraInput(BaseModel):
    """Every input of `fal-ai/flux-lora`, with fal's ranges and defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    endpoint_id: ClassVar[str] = ENDPOINT_ID
    """The endpoint this input is sent to: the model names it, so the client, the journal, the
    records and the run folders take it from the input (a model of another endpoint of the
    family sets its own)."""

    prompt: str = Field(
        min_length=1,
        title="Prompt",
        description="The prompt to generate an image from.",
    )
    image_size: ImageSizePreset | ImageSize = Field(
        "landscape_4_3",
        title="Image size",
        description="A preset, or a custom width and height (each 1–14142 px).",
    )
    num_inference_steps: int = Field(
        28,
        ge=1,
        le=50,
        title="Steps",
        description="Number of inference steps: more is slower and usually finer.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        title="Seed",
        description="The same seed and inputs give the same image. Empty means random.",
    )
    loras: list[LoraWeight] = Field(
        default_factory=list,
        title="LoRAs",
        description="LoRA weights to merge into the model, each with a scale.",
    )
    guidance_scale: float = Field(
        3.5,
        ge=0,
        le=35,
        title="Guidance",
        description="How closely the image follows the prompt (CFG scale).",
    )
    sync_mode: bool = Field(
        False,
        title="Sync mode",
        description="Return images inline as data: URIs; they are not kept in fal's history.",
    )
    num_images: int = Field(
        1, ge=1, le=4, title="Images", description="How many images to generate (1–4)."
    )
    enable_safety_checker: bool = Field(
        True,
        title="Safety checker",
        description="Flag NSFW images (a flagged image comes back black).",
    )
    output_format: OutputFormat = Field(
        "jpeg", title="Format", description="File format of the generated images."
    )
    acceleration: Acceleration = Field(
        "none", title="Acceleration", description="Faster generation at some cost in quality."
    )

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("image_size", mode="before")
    @classmethod
    def _known_preset(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in PRESET_SIZES:
            raise ValueError(f"{value!r} is not a preset")
        if isinstance(value, (tuple, list)) and len(value) == 2:
            return {"width": value[0], "height": value[1]}
        return value

    @property
    def pixel_size(self) -> tuple[int, int]:
        """The (width, height) in pixels that this input asks for."""
        if isinstance(self.image_size, ImageSize):
            return self.image_size.width, self.image_size.height
        return PRESET_SIZES[self.image_size]

    def to_payload(self) -> dict[str, Any]:
        """The JSON body fal expects: defaults included, an unset seed left out."""
        return self.model_dump(mode="json", exclude_none=True)


IMAGE_TO_IMAGE_ID = "fal-ai/flux-lora/image-to-image"
INPAINTING_ID = "fal-ai/flux-lora/inpainting"

IMAGE_URL_FORMS = "an http(s) URL, a data: URI, or an existing local image file (uploaded)"
"""The accepted forms of an input image or mask, in words."""

DEFAULT_UNKNOWN_SIZE = (1024, 1024)
"""The size an image-to-image output is estimated at when its input image's size is unknown
(fal makes it the input image's size): used only for cost estimates."""


def image_url_problem(value: str) -> str | None:
    """None when `value` is one of IMAGE_URL_FORMS, else why not (in words)."""
    text = value.strip()
    if not text:
        return "must not be blank"
    if _URL.fullmatch(text) or text.startswith("data:image/"):
        return None
    try:
        if "://" not in text and Path(text).expanduser().is_file():
            return None
    except OSError:
        pass
    return f"must be {IMAGE_URL_FORMS}"


ImageReference = Annotated[str, _accepted_when(image_url_problem)]
"""An image fal can download: a URL, a data URI, or a local file (uploaded first)."""


class ImageToImageInput(FluxLoraInput):
    """`fal-ai/flux-lora/image-to-image`: the flux-lora inputs plus an input image and how much
    of it to change. Without an `image_size` the output has the input image's size."""

    endpoint_id: ClassVar[str] = IMAGE_TO_IMAGE_ID

    image_size: ImageSizePreset | ImageSize | None = Field(  # type: ignore[assignment]
        None,
        title="Image size",
        description="A preset or a custom size; empty means the input image's size.",
    )
    image_url: ImageReference = Field(
        title="Image",
        description="The image to start from: a URL, or a local file (uploaded to fal first).",
    )
    strength: float = Field(
        0.85,
        ge=0.01,
        le=1,
        title="Strength",
        description="How much of the input image is changed: low keeps it, 1 redraws it.",
    )

    @property
    def pixel_size(self) -> tuple[int, int]:
        """The size asked for, or (for an estimate) `DEFAULT_UNKNOWN_SIZE` when it is the
        input image's."""
        if self.image_size is None:
            return DEFAULT_UNKNOWN_SIZE
        return super().pixel_size


class InpaintingInput(ImageToImageInput):
    """`fal-ai/flux-lora/inpainting`: an input image and a mask (white: repaint, black: keep)
    of the same size. fal's `strength` here is unverified; it is sent as for image-to-image."""

    endpoint_id: ClassVar[str] = INPAINTING_ID

    mask_url: ImageReference = Field(
        title="Mask",
        description="White where the image is repainted, black where it is kept; the image's "
        "size. A URL, or a local file (uploaded to fal first).",
    )


INPUT_MODELS: dict[str, type[FluxLoraInput]] = {
    ENDPOINT_ID: FluxLoraInput,
    IMAGE_TO_IMAGE_ID: ImageToImageInput,
    INPAINTING_ID: InpaintingInput,
}
"""The flux-lora family: each endpoint's input model (the model names its endpoint)."""


def model_for_fields(fields: Mapping[str, Any]) -> type[FluxLoraInput]:
    """The family member a dict of fields belongs to: a mask means inpainting, an image
    image-to-image, else text-to-image."""
    if "mask_url" in fields:
        return InpaintingInput
    if "image_url" in fields or "strength" in fields:
        return ImageToImageInput
    return FluxLoraInput


class FluxImage(BaseModel):
    """One generated image as fal describes it; only `url` is always there."""

    model_config = ConfigDict(extra="allow")

    url: str
    width: int | None = None
    height: int | None = None
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None


class FluxLoraOutput(BaseModel):
    """The result of a flux-lora request. Unknown extra fields are kept, not rejected."""

    model_config = ConfigDict(extra="allow")

    images: list[FluxImage]
    timings: dict[str, Any] | None = None
    seed: int | None = None
    has_nsfw_concepts: list[bool] = Field(default_factory=list)
    prompt: str | None = None

    def is_nsfw(self, index: int) -> bool:
        """True when the safety checker flagged image `index` (it comes back black)."""
        return index < len(self.has_nsfw_concepts) and self.has_nsfw_concepts[index]


# --- what is allowed, in words a person reads -------------------------------------------------


def preset_list() -> str:
    """The real presets with their pixel sizes, e.g. ``square_hd (1024×1024), …``."""
    return ", ".join(f"{name} ({w}×{h})" for name, (w, h) in PRESET_SIZES.items())


def numeric_range(model: type[BaseModel], field: str) -> tuple[float, float] | None:
    """The inclusive (min, max) declared on a numeric field, or None when it has none."""
    low = high = None
    for item in model.model_fields[field].metadata:
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Le):
            high = item.le
    if low is None or high is None:
        return None
    return float(low), float(high)  # type: ignore[arg-type]


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def allowed_values(field: str, model: type[FluxLoraInput] | None = None) -> str:
    """What `field` of an input model (default FluxLoraInput) accepts, written for a person."""
    model = model or FluxLoraInput
    if field in ("image_url", "mask_url"):
        return IMAGE_URL_FORMS
    if field == "image_size":
        custom = f"{{'width': W, 'height': H}} with each 1–{MAX_SIDE}"
        return f"one of the presets {preset_list()}, or {custom}"
    if field in {"width", "height"}:
        return f"a whole number from 1 to {MAX_SIDE}"
    if field == "prompt":
        return "a non-empty text"
    if field == "seed":
        return "a whole number ≥ 0, or None for a random seed"
    if field == "loras":
        return "a list of {'path': URL, HF repo or file, 'scale': number, 'force': bool}"
    if field == "path":
        return LORA_PATH_FORMS
    if field == "force":
        return "True, False or None"
    if field == "scale":
        return "a finite number (commonly 0–4)"
    info = model.model_fields.get(field)
    if info is None:
        return "one of the fields " + ", ".join(model.model_fields)
    choices = get_args(info.annotation)
    if choices and all(isinstance(c, str) for c in choices):
        return "one of " + ", ".join(repr(c) for c in choices)
    if info.annotation is bool:
        return "True or False"
    bounds = numeric_range(model, field)
    if bounds is not None:
        kind = "a whole number" if info.annotation is int else "a number"
        return f"{kind} from {_format_number(bounds[0])} to {_format_number(bounds[1])}"
    return "see the field's description"


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "ImageSize" or "[" in part:
            continue  # pydantic's union-branch labels are noise to a person
        else:
            out += f".{part}" if out else part
    return out


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _did_you_mean(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    normalised = value.strip().lower().replace(" ", "_").replace("-", "_")
    parts = normalised.split("_")
    if len(parts) == 3 and parts[0] in {"portrait", "landscape"}:
        swapped = f"{parts[0]}_{parts[2]}_{parts[1]}"  # portrait_3_4 -> portrait_4_3
        if swapped in PRESET_SIZES:
            return f" (did you mean {swapped!r}?)"
    close = difflib.get_close_matches(normalised, PRESET_SIZES, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _problems(exc: ValidationError, model: type[FluxLoraInput] | None = None) -> list[FieldProblem]:
    model = model or FluxLoraInput
    problems: dict[str, FieldProblem] = {}
    for err in exc.errors():
        field = _dotted(err["loc"]) or "input"
        top = field.split("[")[0].split(".")[0]
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            message = f"unknown field; allowed: {', '.join(model.model_fields)}"
        elif err["type"] == "missing":
            message = f"is required ({allowed_values(field.split('.')[-1], model)})"
        elif top == "image_size" and "." not in field:
            hint = _did_you_mean(value)
            message = (
                f"{_short_repr(value)} is not allowed{hint}; use {allowed_values('image_size')}"
            )
        else:
            leaf = field.split(".")[-1].split("[")[0]
            message = f"{_short_repr(value)} is not allowed; must be {allowed_values(leaf, model)}"
        # a union reports once per branch; keep the first (most specific) per field
        problems.setdefault(field, FieldProblem(field, value, message))
    # a nested problem (image_size.width) says more than its union's generic one (image_size)
    nested_tops = {f.split(".")[0] for f in problems if "." in f}
    return [p for f, p in problems.items() if f not in nested_tops]


def validate_input(
    data: FluxLoraInput | Mapping[str, Any] | str | None = None,
    *,
    model: type[FluxLoraInput] | None = None,
    **fields: Any,
) -> FluxLoraInput:
    """Build an input of the flux-lora family from a model, a dict, a prompt string or keyword
    arguments, or raise InputError (also for an input of the wrong type). The model is the
    given one's, else `model`, else the one the fields name (`model_for_fields`)."""
    if isinstance(data, FluxLoraInput) and not fields:
        return data
    merged: dict[str, Any] = {}
    if isinstance(data, FluxLoraInput):
        model = model or type(data)
        merged.update(data.model_dump(exclude_unset=False))
    elif isinstance(data, str):
        merged["prompt"] = data  # generate("a tiger eye")
    elif isinstance(data, Mapping):
        if not all(isinstance(key, str) for key in data):
            allowed = ", ".join(FluxLoraInput.model_fields)
            message = f"field names must be strings; allowed: {allowed}"
            raise InputError([FieldProblem("input", None, message)])
        merged.update(data)
    elif data is not None:
        allowed = "a FluxLoraInput, a dict of fields, or the prompt as a string"
        message = f"a {type(data).__name__} is not allowed; use {allowed}"
        raise InputError([FieldProblem("input", _short_repr(data), message)])
    merged.update(fields)
    chosen = model or model_for_fields(merged)
    try:
        return chosen.model_validate(merged)
    except ValidationError as exc:
        raise InputError(_problems(exc, chosen)) from None
