"""`load_run(path)`: a run folder's images with their parameters, ratings and votes, in Python.

```python
run = load_run("fluxwidget-runs/fox-grid")
run.images                      # one `RunImage` per saved image (job id, index, file, input, axes)
run.rate("c1-0-0", stars=5)     # stored in the folder's ratings.jsonl (see store.ratings)
run.ranking(); run.win_rates(); run.favourites()
run.filter(min_stars=4, guidance_scale=3.5).sort("stars").export("picked.zip")
run.to_pandas()
```
Pure: no widgets. Works for any run folder (sweeps, the panel's runs, the CLI's).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..disk import write_atomically
from ..errors import RatingError
from ..store.ratings import Rating, Ratings, Verdict, Vote, Winner, image_key
from ..store.records import JobRecord
from ..store.runs import Run
from .ranges import format_value
from .ranking import RankedImage, WinRate, describe_win_rates, next_pair, rank_images, win_rates

__all__ = ["RunImage", "RunResults", "load_run"]


@dataclass
class RunImage:
    """One saved image of a run: where it is, what made it, and how it was rated."""

    job_id: str
    index: int
    path: Path
    endpoint: str
    input: dict[str, Any]
    axes: dict[str, Any]
    seed: int | None
    created: dt.datetime
    rating: Rating | None = None
    record: JobRecord | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """``"<job id>:<index>"``: how ratings and votes name it."""
        return image_key(self.job_id, self.index)

    @property
    def stars(self) -> int | None:
        """Its stars (1–5), if rated."""
        return self.rating.stars if self.rating is not None else None

    @property
    def verdict(self) -> str | None:
        """``"pick"``, ``"reject"`` or None."""
        return self.rating.verdict if self.rating is not None else None

    @property
    def note(self) -> str:
        """Its note ("" without one)."""
        return self.rating.note if self.rating is not None else ""

    def parameters(self) -> dict[str, Any]:
        """Its input with the seed it used (what makes it again)."""
        payload = dict(self.input)
        if self.seed is not None:
            payload["seed"] = self.seed
        return payload

    def value(self, name: str) -> Any:
        """An axis value (by label) or an input parameter (by field), else None."""
        if name in self.axes:
            return self.axes[name]
        return self.parameters().get(name)

    def row(self) -> dict[str, Any]:
        """A flat dict: ids, file, axis values, rating and every parameter."""
        return {
            "image": self.key,
            "job_id": self.job_id,
            "index": self.index,
            "file": str(self.path),
            "endpoint": self.endpoint,
            "created": self.created.isoformat(timespec="seconds"),
            **{f"axis:{k}": v for k, v in self.axes.items()},
            "stars": self.stars,
            "verdict": self.verdict,
            "note": self.note,
            **self.parameters(),
        }


def _created(path: Path, fallback: float) -> dt.datetime:
    try:
        stamp = path.stat().st_mtime
    except OSError:
        stamp = fallback
    return dt.datetime.fromtimestamp(stamp).astimezone()


def _as_datetime(value: dt.datetime | dt.date | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    return value if value.tzinfo is not None else value.astimezone()


class RunResults:
    """A run folder's images (all of them, or a selection made by `filter`/`sort`), with the
    folder's ratings and votes. Re-read with `load_run` to see another process's changes."""

    def __init__(
        self, run: Run, ratings: Ratings, images: Sequence[RunImage] | None = None
    ) -> None:
        self.run = run
        self.store = ratings
        self._all = images is None
        self.images: list[RunImage] = (
            list(images) if images is not None else list(self._read_images())
        )

    def _read_images(self) -> Iterator[RunImage]:
        for record in self.run.records():
            for saved in record.images:
                path = self.run.path / saved.file
                yield RunImage(
                    record.job_id,
                    saved.index,
                    path,
                    record.endpoint,
                    dict(record.input),
                    dict(record.axes),
                    record.seed,
                    _created(path, self.run.created),
                    self.store.rating(record.job_id, saved.index),
                    record,
                )

    def __repr__(self) -> str:
        return (
            f"RunResults({str(self.path)!r}, images={len(self.images)}, "
            f"rated={sum(i.rating is not None for i in self.images)}, votes={len(self.votes)})"
        )

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[RunImage]:
        return iter(self.images)

    def __getitem__(self, key: int | str) -> RunImage:
        if isinstance(key, int):
            return self.images[key]
        wanted = key if ":" in key else image_key(key, 0)
        for image in self.images:
            if image.key == wanted:
                return image
        raise KeyError(key)

    # --- what the folder holds ------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The run folder."""
        return self.run.path

    @property
    def kind(self) -> str:
        """``"sweep"``, ``"generate"``, ..."""
        return self.run.kind

    @property
    def jobs(self) -> list[JobRecord]:
        """Every job (a sweep's cells) with its full record."""
        return self.run.records()

    cells = jobs

    @property
    def axes(self) -> list[str]:
        """The swept axes' labels, in the order the jobs name them."""
        names: dict[str, None] = {}
        for image in self.images:
            names.update(dict.fromkeys(image.axes))
        return list(names)

    @property
    def ratings(self) -> dict[str, Rating]:
        """Image key → its current rating (the images of this selection)."""
        keys = {image.key for image in self.images}
        return {k: r for k, r in self.store.state.ratings.items() if k in keys}

    @property
    def votes(self) -> list[Vote]:
        """The blind votes between images of this selection, oldest first."""
        keys = {image.key for image in self.images}
        return [v for v in self.store.votes if v.a in keys and v.b in keys]

    def _select(self, images: Iterable[RunImage]) -> RunResults:
        return RunResults(self.run, self.store, list(images))

    # --- rating ---------------------------------------------------------------------------

    def rate(
        self,
        job_id: str,
        index: int = 0,
        *,
        stars: int | None = None,
        verdict: Verdict | None = None,
        note: str = "",
    ) -> Rating:
        """Rate an image (stored in the run folder: needs its write lock)."""
        image = self[image_key(job_id, index)]
        rating = self.store.rate(job_id, index, stars=stars, verdict=verdict, note=note)
        image.rating = None if rating.empty else rating
        return rating

    def vote(self, a: str, b: str, winner: Winner) -> Vote:
        """Store a blind vote between images `a` and `b` (keys or job ids)."""
        first, second = self[a].key, self[b].key
        return self.store.vote(first, second, winner)

    # --- ranking --------------------------------------------------------------------------

    def ranking(self) -> list[RankedImage]:
        """Every image best first (Bradley–Terry on votes and ratings: `sweeps.ranking`)."""
        return rank_images([i.key for i in self.images], self.ratings, self.votes)

    def win_rates(self) -> dict[str, list[WinRate]]:
        """Per swept axis, each value's win rate in blind votes, with a 95 % interval."""
        return win_rates(self.votes, {i.key: i.axes for i in self.images if i.axes})

    def describe_win_rates(self) -> list[str]:
        """``guidance_scale 3.5 wins 68 % ± 9 % (25 votes)`` lines."""
        return describe_win_rates(self.win_rates())

    def winner(self) -> RunImage | None:
        """The best image, when anything ranks it (a vote or a rating), else None."""
        for entry in self.ranking():
            if entry.compared:
                return self[entry.key]
            break
        return None

    def favourites(self, min_stars: int = 4) -> RunResults:
        """The picks and the images with at least `min_stars`, best ranked first (rejects
        never)."""
        chosen = [
            i
            for i in self.images
            if i.verdict == "pick" or (i.verdict != "reject" and (i.stars or 0) >= min_stars)
        ]
        order = {entry.key: entry.rank for entry in self.ranking()}
        return self._select(sorted(chosen, key=lambda i: order.get(i.key, 0)))

    def next_pair(self) -> tuple[RunImage, RunImage] | None:
        """The next two images to compare blind (`sweeps.ranking.next_pair`), or None."""
        pair = next_pair([i.key for i in self.images], self.votes, [e.key for e in self.ranking()])
        return None if pair is None else (self[pair[0]], self[pair[1]])

    # --- selecting ------------------------------------------------------------------------

    def filter(
        self,
        where: Callable[[RunImage], bool] | None = None,
        *,
        min_stars: int | None = None,
        verdict: str | None = None,
        rated: bool | None = None,
        endpoint: str | None = None,
        since: dt.datetime | dt.date | str | None = None,
        until: dt.datetime | dt.date | str | None = None,
        **parameters: Any,
    ) -> RunResults:
        """The images that match every condition: at least `min_stars`, a `verdict`
        (``"pick"``/``"reject"``), rated or not, an `endpoint`, made `since`/`until` a date,
        ``name=value`` for an axis label or an input field (a value is compared as the grid
        shows it, so ``guidance_scale=3.5`` and ``"3.5"`` both match), and `where(image)`."""
        start = _as_datetime(since) if since is not None else None
        end = _as_datetime(until) if until is not None else None

        def keep(image: RunImage) -> bool:
            if min_stars is not None and (image.stars or 0) < min_stars:
                return False
            if verdict is not None and image.verdict != verdict:
                return False
            if rated is not None and (image.rating is not None) != rated:
                return False
            if endpoint is not None and image.endpoint != endpoint:
                return False
            if start is not None and image.created < start:
                return False
            if end is not None and image.created > end:
                return False
            for name, wanted in parameters.items():
                if format_value(image.value(name)) != format_value(wanted):
                    return False
            return where is None or bool(where(image))

        return self._select(i for i in self.images if keep(i))

    def sort(
        self, by: str | Callable[[RunImage], Any] = "rank", *, reverse: bool = False
    ) -> RunResults:
        """Sorted by ``"rank"`` (best first), ``"stars"`` (most first), ``"date"``,
        ``"endpoint"``, any axis or parameter name, or a key function; missing values last."""
        if callable(by):
            return self._select(sorted(self.images, key=by, reverse=reverse))
        if by == "rank":
            order = {entry.key: entry.rank for entry in self.ranking()}
            key: Callable[[RunImage], Any] = lambda i: (0, order.get(i.key, 0))  # noqa: E731
        elif by == "stars":
            key = lambda i: (i.stars is None, -(i.stars or 0))  # noqa: E731
        elif by == "date":
            key = lambda i: (0, i.created)  # noqa: E731
        elif by == "endpoint":
            key = lambda i: (0, i.endpoint)  # noqa: E731
        else:

            def key(image: RunImage) -> Any:
                value = image.value(by)
                if value is None:
                    return (1, 0, "")
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    return (0, value, "")
                return (0, 0, format_value(value))

        return self._select(sorted(self.images, key=key, reverse=reverse))

    # --- out ------------------------------------------------------------------------------

    def to_records(self) -> list[dict[str, Any]]:
        """One flat dict per image (`RunImage.row`), with its rank."""
        order = {entry.key: entry for entry in self.ranking()}
        rows = []
        for image in self.images:
            entry = order.get(image.key)
            row = image.row()
            row["rank"] = entry.rank if entry is not None else None
            row["strength"] = entry.strength if entry is not None else None
            rows.append(row)
        return rows

    def to_pandas(self) -> Any:
        """`to_records` as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "to_pandas() needs pandas, which is not installed: pip install pandas "
                "(to_records() gives the same rows as dicts)"
            ) from None
        return pd.DataFrame(self.to_records())

    def export(
        self, dest: str | Path, selection: Iterable[RunImage] | RunResults | None = None
    ) -> Path:
        """Copy the selected images (default: this selection) into the folder `dest`, or into a
        zip when `dest` ends in ``.zip``, with ``parameters.csv`` and ``parameters.json`` (their
        parameters, axis values and ratings). Returns `dest`."""
        chosen = list(selection if selection is not None else self.images)
        target = Path(dest)
        rows = []
        for image in chosen:
            rows.append({**image.row(), "file": image.path.name})
        table = io.StringIO()
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        writer = csv.DictWriter(table, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    k: json.dumps(v, default=str) if isinstance(v, (dict, list)) else v
                    for k, v in row.items()
                }
            )
        listing = json.dumps(rows, indent=1, ensure_ascii=False, default=str)
        if target.suffix.lower() == ".zip":
            target.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
                for image in chosen:
                    archive.write(image.path, image.path.name)
                archive.writestr("parameters.csv", table.getvalue())
                archive.writestr("parameters.json", listing)
            write_atomically(target, buffer.getvalue())
            return target
        if target.exists() and not target.is_dir():
            raise RatingError(f"{target} exists and is not a folder")
        target.mkdir(parents=True, exist_ok=True)
        for image in chosen:
            shutil.copy2(image.path, target / image.path.name)
        write_atomically(target / "parameters.csv", table.getvalue().encode("utf-8"))
        write_atomically(target / "parameters.json", listing.encode("utf-8"))
        return target


def load_run(path: str | Path | Run) -> RunResults:
    """A run folder's images, parameters, ratings and votes (reads only: no lock needed until
    something is rated)."""
    run = path if isinstance(path, Run) else Run.open(path)
    known = {image_key(r.job_id, s.index) for r in run.records() for s in r.images}
    return RunResults(run, Ratings(run.path, known=known))
