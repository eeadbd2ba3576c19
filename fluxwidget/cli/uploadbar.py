"""Progress bars (tqdm, on stderr) for the uploads of big local files an input names."""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["BIG_FILE", "UploadBars"]

BIG_FILE = 16 * 1024 * 1024
"""Files at least this big get a progress bar; smaller ones go up too fast to watch."""


class UploadBars:
    """A `FluxClient.upload_progress` listener: one bar per big file while it is uploaded.

    The bar shows the file's name (not its whole path) and is closed when the file is up; a
    file found in the upload cache shows nothing."""

    def __init__(
        self, *, enabled: bool = True, min_bytes: int = BIG_FILE, stream: TextIO | None = None
    ) -> None:
        self.enabled = enabled
        self.min_bytes = min_bytes
        self.stream = stream
        self._bars: dict[str, Any] = {}
        self.shown: list[str] = []
        """The files a bar was shown for (for tests)."""

    def __call__(self, path: str, sent: int, total: int) -> None:
        if not self.enabled or total < self.min_bytes:
            return
        bar = self._bars.get(path)
        if bar is None:
            if sent >= total:
                return  # cached or shared: already up, nothing to watch
            from tqdm import tqdm

            name = path.replace("\\", "/").rsplit("/", 1)[-1]
            bar = tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"uploading {name}",
                file=self.stream or sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )
            self._bars[path] = bar
            self.shown.append(path)
        bar.n = sent
        bar.refresh()
        if sent >= total:
            bar.close()
            del self._bars[path]

    def close(self) -> None:
        """Close the bars of uploads that did not finish (an error, Ctrl-C)."""
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
