"""Static fallbacks: panel and sweep outputs readable where no widget manager runs.

Every output carries ``text/html`` (small inline thumbnails, escaped labels and parameters,
size-capped) and ``text/plain`` next to the widget view, and the saved notebook holds the
fallback of the latest state: executed with nbclient, exported with ``jupyter nbconvert --to
html`` (no kernel), the page shows the thumbnails and the escaped prompt.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fluxwidget import images
from fluxwidget.ui.fallback import (
    FALLBACK_MAX_BYTES,
    UPDATE_DELAY,
    FallbackItem,
    LiveOutput,
    fallback_html,
    grid_fallback_html,
)

try:  # tests/ is on sys.path in pytest's default import mode; a package layout also works
    from notebook_exec import execute_notebook
except ImportError:  # pragma: no cover
    from tests.notebook_exec import execute_notebook

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROMPT = "a <b>tiger</b> & \"eye\" <script>alert('x')</script>"
SWEEP_PROMPT = "a <i>fox</i>"


def _photo(seed: int, side: int = 512) -> bytes:
    """A noisy, photo-like JPEG (noise compresses like a photo's detail)."""
    import io
    import random

    from PIL import Image

    rng = random.Random(seed)
    image = Image.effect_noise((side, side), 60).convert("RGB")
    image = Image.blend(
        image, Image.new("RGB", (side, side), tuple(rng.randrange(256) for _ in range(3))), 0.4
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def test_fallback_escapes_every_text() -> None:
    thumb = images.thumbnail(_photo(1), 256)
    html = fallback_html(
        "<title>",
        [FallbackItem("<heading> & 'x'", [thumb], ["<cap>"], details='"<d>"')],
    )
    assert "<title>" not in html
    assert "&lt;title&gt;" in html
    assert "<heading>" not in html
    assert "&lt;heading&gt; &amp; &#x27;x&#x27;" in html
    assert "<cap>" not in html
    assert "&lt;cap&gt;" in html
    assert "&quot;&lt;d&gt;&quot;" in html
    assert html.count('<img src="data:image/jpeg;base64,') == 1
    assert "Not live — run the cell to use it." in html


def test_fallback_is_capped_newest_first_with_a_more_line() -> None:
    items = [
        FallbackItem(f"run {n}", [images.thumbnail(_photo(n), 256)], [f"#{n}"])
        for n in range(60, 0, -1)  # newest first
    ]
    html = fallback_html("FluxPanel", items)
    assert len(html) <= FALLBACK_MAX_BYTES + 200
    assert html.index("run 60") < html.index("run 59")
    shown = html.count("<img ")
    assert 10 <= shown < 60
    assert f"… and {60 - shown} more" in html


def test_grid_fallback_is_a_table_with_escaped_axes() -> None:
    thumb = images.thumbnail(_photo(2), 192)
    axes = {"x_label": "guidance<", "x_values": ["2", "<3>"], "y_label": "", "y_values": []}
    entries = [
        {"id": "c0000", "x": 0, "y": 0, "z": 0, "state": "done", "text": "seed 1", "thumb": 0},
        {"id": "c0001", "x": 1, "y": 0, "z": 0, "state": "error", "text": "<boom>", "thumb": -1},
    ]
    html = grid_fallback_html("Sweep <x>", "Done <1>", axes, entries, [thumb])
    assert html.count('<img src="data:image/') == 1
    for raw in ("<x>", "<3>", "<boom>", "<1>", "guidance<"):
        assert raw not in html
    assert "&lt;boom&gt;" in html
    assert "&lt;3&gt;" in html


def test_panel_bundle_has_the_widget_and_the_fallback(tmp_path: Path) -> None:
    from fluxwidget import FluxPanel

    panel = FluxPanel(runs_root=tmp_path)
    try:
        bundle = panel._repr_mimebundle_()
        assert WIDGET_VIEW in bundle
        assert "FluxPanel" in bundle["text/plain"]
        assert "no results when this snapshot was taken" in bundle["text/html"]
        assert len(bundle["text/html"]) < 2000
    finally:
        panel.close()


def test_live_output_updates_once_at_the_end_of_a_cell() -> None:
    class Events:
        def __init__(self) -> None:
            self.callbacks: list[object] = []

        def register(self, _name: str, callback: object) -> None:
            self.callbacks.append(callback)

        def unregister(self, _name: str, callback: object) -> None:
            self.callbacks.remove(callback)

    live = LiveOutput(lambda: None, lambda: "<p>x</p>", lambda: "x")
    live.changed()  # not displayed: nothing to update
    assert not live._cell_end.watching
    live.displayed = True
    shell = type("Shell", (), {"events": Events()})()
    import IPython

    original = IPython.get_ipython
    IPython.get_ipython = lambda: shell  # type: ignore[assignment]
    try:
        live.changed()
        live.changed()
        assert len(shell.events.callbacks) == 1
        shell.events.callbacks[0]()  # the cell ends
        assert shell.events.callbacks == []
        assert live._dirty is False
    finally:
        IPython.get_ipython = original  # type: ignore[assignment]


async def test_live_output_updates_a_moment_after_changes_between_cells(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Generate click's results arrive with no cell running: one update shortly after."""
    import IPython.display

    sent: list[dict[str, object]] = []
    monkeypatch.setattr(
        IPython.display,
        "update_display",
        lambda bundle, **kwargs: sent.append({"bundle": bundle, **kwargs}),
    )
    html = ["<p>one image</p>"]
    live = LiveOutput(lambda: object(), lambda: html[0], lambda: "x")
    live.displayed = True
    for count in ("two", "three", "four"):  # a burst of results
        html[0] = f"<p>{count} images</p>"
        live.changed()
    assert sent == []  # not at once
    await asyncio.sleep(UPDATE_DELAY * 3)
    assert len(sent) == 1
    assert sent[0]["bundle"]["text/html"] == "<p>four images</p>"  # type: ignore[index]
    assert sent[0]["display_id"] == live.display_id
    assert live.updates == 1
    live.changed()
    live.cancel()  # closing: the pending update is dropped
    await asyncio.sleep(UPDATE_DELAY * 3)
    assert len(sent) == 1


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    cells = [
        "from fluxwidget import FluxPanel, sweep\n\n"
        "panel = FluxPanel()\n"
        f"panel.set(prompt={PROMPT!r}, num_images=2, num_inference_steps=4, seed=7)\n"
        "panel",
        "first = await panel.generate()",
        "second = await panel.generate(num_images=1, seed=8)",
        f"run = sweep({SWEEP_PROMPT!r}, x='guidance_scale=2,3.5', num_inference_steps=4, seed=3)\n"
        "run",
        "result = await run",
    ]
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def _to_html(path: Path) -> str:
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", path.name],
        cwd=path.parent,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return path.with_suffix(".html").read_text(encoding="utf-8")


@pytest.mark.timeout(240)
def test_executed_notebook_exports_to_html_with_thumbnails_and_escaped_prompt(
    tmp_path: Path,
) -> None:
    executed = execute_notebook(_notebook(tmp_path / "src" / "shared.ipynb"), tmp_path / "run")
    views = [out for _index, out in executed.outputs() if WIDGET_VIEW in out.get("data", {})]
    assert len(views) == 2, [o.get("data", {}).keys() for _i, o in executed.outputs()]
    # each widget view is an output of its own, never updated; its fallback is the next one
    assert all("text/html" not in out.data for out in views)
    outputs = [
        out
        for _index, out in executed.outputs()
        if "fluxwidget-fallback" in str(out.get("data", {}).get("text/html", ""))
    ]
    assert len(outputs) == 2
    panel_html, sweep_html = (str(out.data["text/html"]) for out in outputs)
    # the latest state: both runs of the panel (3 images), both cells of the sweep
    assert panel_html.count('<img src="data:image/jpeg;base64,') == 3
    assert sweep_html.count('<img src="data:image/jpeg;base64,') == 2
    assert panel_html.index("#2 ·") < panel_html.index("#1 ·")  # newest first
    assert len(panel_html) < FALLBACK_MAX_BYTES
    assert len(sweep_html) < FALLBACK_MAX_BYTES
    for out in outputs:
        assert "<script>" not in str(out.data["text/html"])

    # As JupyterLab saves by default (no widget state) and as GitHub shows it: the fallback.
    plain = tmp_path / "run" / "plain.ipynb"
    nb = nbformat.read(tmp_path / "run" / "shared.ipynb", as_version=4)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, plain)
    page = _to_html(plain)
    # nbconvert's sanitizer reorders attributes and adds an alt text: <img alt=".." src="data:
    assert len(re.findall(r'<img [^>]*src="data:image/jpeg;base64,', page)) == 5
    assert "a &lt;b&gt;tiger&lt;/b&gt; &amp;" in page
    assert "&lt;script&gt;alert" in page
    assert "<script>alert" not in page
    assert "a &lt;i&gt;fox&lt;/i&gt;" in page

    # With widget state saved, nbconvert draws the widgets (html-manager); the fallback stays
    # in the notebook's outputs for readers that cannot.
    with_state = _to_html(tmp_path / "run" / "shared.ipynb")
    assert "application/vnd.jupyter.widget-state+json" in with_state
