"""The shell's arguments: the job's input options generated from the schema (names, types,
choices, ranges, defaults and help), the connection options, and the input they give.

The options are the union of the flux-lora family's fields (`FAMILY_FIELDS`): ``--image``
(image-to-image), ``--strength`` and ``--mask`` (inpainting) join the text-to-image ones, and
the fields given choose the endpoint (`model_for_fields`)."""

from __future__ import annotations

import argparse
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from ..schema import FluxLoraInput, ImageToImageInput, InpaintingInput, allowed_values

__all__ = [
    "FAMILY_FIELDS",
    "FLAG_NAMES",
    "add_input_args",
    "input_fields",
    "parse_lora",
    "parse_size",
]

FLAG_NAMES: dict[str, tuple[str, ...]] = {
    "num_inference_steps": ("--steps", "--num-inference-steps"),
    "guidance_scale": ("--guidance", "--guidance-scale"),
    "output_format": ("--format", "--output-format"),
    "enable_safety_checker": ("--no-safety-checker",),
    "loras": ("--lora",),
    "image_url": ("--image", "--image-url"),
    "mask_url": ("--mask", "--mask-url"),
}
"""Short names kept from the first CLI; every field also has its own name as a flag (where it
differs). Other fields are ``--field-name``."""

EXTRA_HELP = {
    "image_size": "Custom sizes as WIDTHxHEIGHT; with --image, the image's size by default.",
    "loras": "Repeatable: a URL, Hugging Face repo id or local .safetensors file (uploaded "
    "first), and a scale (default 1).",
    "image_url": "Image-to-image: start from this picture instead of noise.",
    "strength": "Image-to-image and inpainting only (needs --image).",
    "mask_url": "Inpainting (needs --image): repaint only the white part of this picture; "
    "a mask of another size than the image is refused.",
}

FAMILY_FIELDS: dict[str, FieldInfo] = {
    **FluxLoraInput.model_fields,
    **{
        k: v for k, v in InpaintingInput.model_fields.items() if k not in FluxLoraInput.model_fields
    },
}
"""Every input field of the flux-lora family (text-to-image's own definitions first); the
model that is sent is chosen from the fields given (`model_for_fields`)."""

METAVARS = {"image_url": "PATH|URL", "mask_url": "PATH|URL"}


def parse_size(text: str) -> str | dict[str, int]:
    """A preset name, or ``WIDTHxHEIGHT`` for a custom size (validated later by the schema)."""
    width, sep, height = text.lower().partition("x")
    if sep and width.isdigit() and height.isdigit():
        return {"width": int(width), "height": int(height)}
    return text


def parse_lora(text: str) -> dict[str, Any]:
    """``PATH`` or ``PATH:SCALE``. A URL's own colons are kept (``https://…`` has a ``/`` after
    its colon); any other tail must be a number."""
    path, sep, scale = text.rpartition(":")
    if not sep or not path or "/" in scale:
        return {"path": text}
    try:
        return {"path": path, "scale": float(scale)}
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{scale!r} is not a number: use PATH or PATH:SCALE, e.g. owner/lora:0.8"
        ) from None


def _field_help(field: str, extra: str = "") -> str:
    """Help text from the schema: description, what is allowed, the default."""
    info = FAMILY_FIELDS[field]
    model = FluxLoraInput if field in FluxLoraInput.model_fields else ImageToImageInput
    text = f"{extra} {info.description}"
    if field in METAVARS:
        pass  # the description says where the file may be
    elif field not in ("loras", "image_size") and info.annotation is not bool:
        text += f" Allowed: {allowed_values(field, model)}."
    elif field == "image_size":
        text += f" Allowed: {allowed_values(field).split(', or {')[0]}."
    if not info.is_required() and field not in METAVARS:
        default = info.get_default(call_default_factory=True)
        if field == "enable_safety_checker":
            text = "Turn the NSFW safety checker off (it is on by default). " + text
        elif isinstance(default, bool):
            text += f" Default: {'on' if default else 'off'}."
        elif default == []:
            text += " Default: none."
        else:
            text += f" Default: {'random' if default is None else default}."
    return text.replace("%", "%%").strip()


def _scalar_type(annotation: Any) -> Any:
    """int, float, str or a Literal's choices (as a tuple) from a field's annotation."""
    origin = get_origin(annotation)
    if origin is Literal:
        return tuple(get_args(annotation))
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        return _scalar_type(options[0]) if len(options) == 1 else str
    return annotation


def add_input_args(parser: argparse.ArgumentParser) -> None:
    """One option per input field, from the schema. Unset options are left out of the input,
    so the schema's own defaults apply."""
    for field, info in FAMILY_FIELDS.items():
        help_text = _field_help(field, EXTRA_HELP.get(field, ""))
        if field in METAVARS:
            flags = FLAG_NAMES[field]
            parser.add_argument(*flags, dest=field, metavar=METAVARS[field], help=help_text)
            continue
        if info.is_required():
            parser.add_argument(field, help=help_text)
            continue
        flags = FLAG_NAMES.get(field, ("--" + field.replace("_", "-"),))
        default = info.get_default(call_default_factory=True)
        kind = _scalar_type(info.annotation)
        if field == "loras":
            parser.add_argument(
                *flags,
                dest=field,
                type=parse_lora,
                action="append",
                metavar="PATH[:SCALE]",
                help=help_text,
            )
        elif field == "image_size":
            parser.add_argument(
                *flags, dest=field, type=parse_size, metavar="PRESET|WxH", help=help_text
            )
        elif isinstance(default, bool):
            parser.add_argument(
                *flags, dest=field, action="store_const", const=not default, help=help_text
            )
        elif isinstance(kind, tuple):
            parser.add_argument(*flags, dest=field, choices=kind, help=help_text)
        else:
            metavar = {int: "N", float: "X"}.get(kind, "TEXT")
            parser.add_argument(*flags, dest=field, type=kind, metavar=metavar, help=help_text)


def input_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The input fields the user gave (the schema's defaults fill in the rest)."""
    return {
        field: getattr(args, field)
        for field in FAMILY_FIELDS
        if getattr(args, field, None) is not None
    }
