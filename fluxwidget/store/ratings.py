"""Ratings and blind votes of a run's images, kept in the run folder beside them.

``ratings.jsonl`` is append-only: one whole line per change (`disk.append_line`, fsynced), folded
into the current state when read, so a crash leaves at most a torn last line (skipped) and a
restart sees every change made before it. Two kinds of lines:

- ``{"event": "rate", "job_id", "index", "stars": 1-5 | null, "verdict": "pick" | "reject" |
  null, "note": str, "time"}``: the whole new rating of one image (the last line wins; a line
  with no stars, no verdict and no note clears it);
- ``{"event": "vote", "a": "<job id>:<index>", "b": ..., "winner": "a" | "b" | "tie", "time"}``:
  one blind A/B vote.

Writing needs the folder's write lock, as every write to a run folder does: a `Run` of this
process that holds it (a sweep running in the notebook) is reused; otherwise the lock is taken
for the write and let go after it, and another process holding it (a sweep running elsewhere)
makes the write fail at once with `RunFolderBusy`. Reading needs no lock.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ..disk import append_line
from ..errors import RatingError
from .lock import RunLock

__all__ = [
    "RATINGS",
    "Rating",
    "Ratings",
    "RatingsState",
    "Verdict",
    "Vote",
    "Winner",
    "image_key",
    "read_ratings",
    "split_key",
]

RATINGS = "ratings.jsonl"
NOTE_LIMIT = 500
"""Longest note kept (characters): a note is a short remark, not a document."""

Verdict = Literal["pick", "reject"]
Winner = Literal["a", "b", "tie"]
VERDICTS: frozenset[str] = frozenset(get_args(Verdict))
WINNERS: frozenset[str] = frozenset(get_args(Winner))


def image_key(job_id: str, index: int = 0) -> str:
    """How ratings and votes name an image: ``"<job id>:<index>"``."""
    return f"{job_id}:{int(index)}"


def split_key(key: str) -> tuple[str, int]:
    """``"c0-1-0:0"`` → ``("c0-1-0", 0)`` (a key without an index means image 0)."""
    job_id, _, index = key.rpartition(":")
    if not job_id:
        return key, 0
    try:
        return job_id, int(index)
    except ValueError:
        return key, 0


@dataclass(frozen=True)
class Rating:
    """One image's rating: stars (1–5), a verdict (pick / reject) and a short note."""

    job_id: str
    index: int = 0
    stars: int | None = None
    verdict: Verdict | None = None
    note: str = ""
    time: float = 0.0

    @property
    def key(self) -> str:
        """The image's key (`image_key`)."""
        return image_key(self.job_id, self.index)

    @property
    def empty(self) -> bool:
        """No stars, no verdict, no note: the image is not rated."""
        return self.stars is None and self.verdict is None and not self.note

    def describe(self) -> str:
        """``★★★★☆ pick — "sharp"`` (empty for an unrated image)."""
        parts = []
        if self.stars is not None:
            parts.append("★" * self.stars + "☆" * (5 - self.stars))
        if self.verdict is not None:
            parts.append(self.verdict)
        if self.note:
            parts.append(f"— {self.note}")
        return " ".join(parts)


@dataclass(frozen=True)
class Vote:
    """One blind A/B vote between two images (keys from `image_key`)."""

    a: str
    b: str
    winner: Winner
    time: float = 0.0

    @property
    def pair(self) -> frozenset[str]:
        """The two images, unordered."""
        return frozenset((self.a, self.b))


@dataclass
class RatingsState:
    """What ``ratings.jsonl`` says now: the current rating of each image and every vote."""

    ratings: dict[str, Rating] = field(default_factory=dict)
    votes: list[Vote] = field(default_factory=list)

    def rating(self, job_id: str, index: int = 0) -> Rating | None:
        """The image's rating, if it has one."""
        return self.ratings.get(image_key(job_id, index))


def _check_rating(stars: int | None, verdict: str | None, note: str) -> None:
    if stars is not None and (
        isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5
    ):
        raise RatingError(f"stars: {stars!r} is not allowed; use 1 to 5 (or None to clear)")
    if verdict is not None and verdict not in VERDICTS:
        raise RatingError(f"verdict: {verdict!r} is not allowed; use 'pick', 'reject' or None")
    if not isinstance(note, str):
        raise RatingError(f"note: {note!r} is not text")


def _fold(lines: Iterator[dict[str, Any]]) -> RatingsState:
    state = RatingsState()
    for line in lines:
        kind = line.get("event")
        stamp = line.get("time")
        when = float(stamp) if isinstance(stamp, (int, float)) else 0.0
        if kind == "rate" and isinstance(line.get("job_id"), str):
            stars = line.get("stars")
            verdict = line.get("verdict")
            note = line.get("note") or ""
            index = line.get("index", 0)
            try:
                _check_rating(stars, verdict, note)
            except RatingError:
                continue  # a line we cannot read is skipped, never fatal
            rating = Rating(
                line["job_id"],
                int(index) if isinstance(index, int) else 0,
                stars,
                verdict,
                note,
                when,
            )
            if rating.empty:
                state.ratings.pop(rating.key, None)
            else:
                state.ratings[rating.key] = rating
        elif kind == "vote":
            a, b, winner = line.get("a"), line.get("b"), line.get("winner")
            if isinstance(a, str) and isinstance(b, str) and a != b and winner in WINNERS:
                state.votes.append(Vote(a, b, winner, when))
    return state


def read_ratings(folder: str | Path) -> RatingsState:
    """The ratings and votes of the run folder (empty when it has none)."""
    path = Path(folder) / RATINGS
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RatingsState()
    except OSError as exc:
        raise RatingError(f"could not read {path}: {exc.strerror or exc}") from None

    def lines() -> Iterator[dict[str, Any]]:
        for raw in text.splitlines():
            with contextlib.suppress(ValueError):
                data = json.loads(raw)
                if isinstance(data, dict):
                    yield data

    return _fold(lines())


class Ratings:
    """The ratings and votes of one run folder: read at once, written line by line.

    `known` (image keys), when given, is what may be rated: anything else is a `RatingError`.
    """

    def __init__(self, folder: str | Path, *, known: set[str] | None = None) -> None:
        self.folder = Path(folder)
        self.known = known
        self.state = read_ratings(self.folder)

    def __repr__(self) -> str:
        return (
            f"Ratings({str(self.folder)!r}, rated={len(self.state.ratings)}, "
            f"votes={len(self.state.votes)})"
        )

    @property
    def path(self) -> Path:
        """The ``ratings.jsonl`` file."""
        return self.folder / RATINGS

    def reload(self) -> RatingsState:
        """Read the file again (another process may have added to it)."""
        self.state = read_ratings(self.folder)
        return self.state

    def rating(self, job_id: str, index: int = 0) -> Rating | None:
        """The image's current rating, if any."""
        return self.state.rating(job_id, index)

    @property
    def votes(self) -> list[Vote]:
        """Every vote, oldest first."""
        return list(self.state.votes)

    def _check_known(self, key: str) -> None:
        if self.known is not None and key not in self.known:
            raise RatingError(f"{key} is not an image of {self.folder}")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the folder's write lock for one write: this process's holder when it has one,
        else the lock taken now (`RunFolderBusy` at once when another process has it)."""
        if RunLock.held_here(self.folder) is not None:
            yield
            return
        lock = RunLock(self.folder)
        lock.claim()
        try:
            yield
        finally:
            lock.release()

    def _append(self, line: dict[str, Any]) -> None:
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        with self._writing():
            append_line(self.path, data)

    def rate(
        self,
        job_id: str,
        index: int = 0,
        *,
        stars: int | None = None,
        verdict: Verdict | None = None,
        note: str = "",
    ) -> Rating:
        """Set the image's whole rating (stars 1–5, pick/reject, a note); all None/"" clears
        it. Stored before returning."""
        _check_rating(stars, verdict, note)
        note = note.strip()[:NOTE_LIMIT]
        rating = Rating(job_id, int(index), stars, verdict, note, time.time())
        self._check_known(rating.key)
        self._append(
            {
                "event": "rate",
                "job_id": job_id,
                "index": rating.index,
                "stars": stars,
                "verdict": verdict,
                "note": note,
                "time": rating.time,
            }
        )
        if rating.empty:
            self.state.ratings.pop(rating.key, None)
        else:
            self.state.ratings[rating.key] = rating
        return rating

    def update(self, job_id: str, index: int = 0, **changes: Any) -> Rating:
        """Change some of the rating's fields (``stars=4``; ``verdict=None`` clears the
        verdict), keeping the others."""
        current = self.rating(job_id, index) or Rating(job_id, index)
        unknown = set(changes) - {"stars", "verdict", "note"}
        if unknown:
            raise RatingError(f"unknown rating fields: {', '.join(sorted(unknown))}")
        fields: dict[str, Any] = {
            "stars": current.stars,
            "verdict": current.verdict,
            "note": current.note,
        }
        fields.update(changes)
        return self.rate(job_id, index, **fields)

    def vote(self, a: str, b: str, winner: Winner) -> Vote:
        """Store one blind vote between images `a` and `b` (keys): ``"a"``, ``"b"`` or
        ``"tie"``."""
        if winner not in WINNERS:
            raise RatingError(f"winner: {winner!r} is not allowed; use 'a', 'b' or 'tie'")
        if a == b:
            raise RatingError("a vote needs two different images")
        self._check_known(a)
        self._check_known(b)
        vote = Vote(a, b, winner, time.time())
        self._append({"event": "vote", "a": a, "b": b, "winner": winner, "time": vote.time})
        self.state.votes.append(vote)
        return vote
