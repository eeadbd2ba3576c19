"""Status-line texts for a job, as plain functions (no widgets)."""

from __future__ import annotations

from ..client.status import queued_text, running_text
from ..errors import AuthenticationError, FalError
from ..schema import FieldProblem, InputError

__all__ = [
    "SUBMITTING",
    "cancel_text",
    "done_text",
    "error_text",
    "problem_text",
    "queued_text",
    "running_text",
    "upload_text",
]

SUBMITTING = "Submitting…"


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def done_text(
    elapsed: float,
    inference_time: float | None = None,
    seed: int | None = None,
    num_images: int | None = None,
    nsfw: int = 0,
) -> str:
    """``Done in 7.9 s (inference 6.1 s) · seed 123 · 2 images``."""
    text = f"Done in {_seconds(elapsed)}"
    if inference_time is not None:
        text += f" (inference {_seconds(inference_time)})"
    if seed is not None:
        text += f" · seed {seed}"
    if num_images is not None:
        text += f" · {num_images} image" + ("" if num_images == 1 else "s")
    if nsfw:
        text += f" · {nsfw} flagged NSFW"
    return text


def problem_text(problem: FieldProblem) -> str:
    """One invalid field in a short sentence, e.g. ``num_images must be 1–4``."""
    return f"{problem.field}: {problem.message}"


def error_text(exc: BaseException) -> str:
    """A clear, one-line message for any failure of a job."""
    if isinstance(exc, InputError):
        return "Invalid input — " + "; ".join(problem_text(p) for p in exc.problems)
    if isinstance(exc, FalError):
        code = f"{exc.status_code}:"
        text = exc.message
        if exc.status_code and not text.startswith(code):
            text = f"{code} {text}"
        if isinstance(exc, AuthenticationError) and "FAL_KEY" not in text:
            text += " — set FAL_KEY or paste a key above"
        return text
    return f"Error: {type(exc).__name__}: {exc}"


def cancel_text(outcome: str) -> str:
    """What a cancel call answered, in words."""
    answers = {
        "CANCELLATION_REQUESTED": "Cancel requested — waiting for the job to stop",
        "ALREADY_COMPLETED": "Already finished — nothing to cancel",
    }
    return answers.get(outcome, f"Cancel answered {outcome}")


def upload_text(path: str, sent: int, total: int) -> str:
    """``Uploading style.safetensors: 40/120 MB`` (kB under a megabyte)."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    if total >= 1_000_000:
        return f"Uploading {name}: {sent / 1e6:.0f}/{total / 1e6:.0f} MB"
    return f"Uploading {name}: {sent / 1e3:.0f}/{total / 1e3:.0f} kB"
