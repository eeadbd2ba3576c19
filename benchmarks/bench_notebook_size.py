"""What each shipped notebook weighs once run: saved size, widget state, and where it goes.

Each notebook in ``notebooks/`` is executed as ``tests/test_notebooks.py`` executes it
(``tests/notebook_exec.py``: nbclient, Run All, no fal key so the built-in emulator, widget state
stored) and the saved text is weighed: the total (``len`` of the saved JSON text, what the test
asserts), the widget state, the number of widget models, and the heaviest kinds of model and of
output. An anywidget model counts its ``_esm``/``_css`` source separately (``esm+css``): that
text is saved in every instance's state.

Run: .venv/bin/python benchmarks/bench_notebook_size.py [--top 8] [notebook.ipynb ...]
(BENCH_SHORT=1: only ``client.ipynb``, the lightest.)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from notebook_exec import NOTEBOOKS, execute_notebook  # noqa: E402

SHORT = os.environ.get("BENCH_SHORT") == "1"


def size(value: Any) -> int:
    """Characters ``value`` takes in the saved JSON (nbformat writes with indent=1)."""
    return len(json.dumps(value, indent=1, ensure_ascii=False))


def model_kind(model: dict[str, Any]) -> str:
    state = model.get("state", {})
    anywidget = state.get("_anywidget_id")
    if anywidget:
        return str(anywidget).rsplit(".", 1)[-1]
    return str(state.get("_model_name", "?"))


def weigh_widgets(state: dict[str, Any]) -> tuple[Counter[str], Counter[str]]:
    """Bytes and model counts per kind; anywidget source text as its own ``… esm+css`` kind."""
    by_bytes: Counter[str] = Counter()
    by_count: Counter[str] = Counter()
    for model in state.values():
        kind = model_kind(model)
        total = size(model)
        source = sum(size(model["state"].get(k, "")) for k in ("_esm", "_css"))
        if source > 2:
            by_bytes[f"{kind} esm+css"] += source
            total -= source
        by_bytes[kind] += total
        by_count[kind] += 1
    return by_bytes, by_count


def weigh_outputs(notebook: Any) -> Counter[str]:
    """Bytes per output mime type (streams and errors by output type)."""
    by_bytes: Counter[str] = Counter()
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if "data" in output:
                for mime, value in output["data"].items():
                    by_bytes[f"output {mime}"] += size(value)
            else:
                by_bytes[f"output {output['output_type']}"] += size(dict(output))
    return by_bytes


def report(path: Path, workdir: Path, top: int) -> dict[str, Any]:
    started = time.monotonic()
    executed = execute_notebook(path, workdir)
    seconds = time.monotonic() - started
    text = executed.text()
    state = executed.widget_state()
    widgets = executed.notebook.metadata.get("widgets", {})
    widget_bytes = size(widgets) if widgets else 0
    by_bytes, by_count = weigh_widgets(state)  # type: ignore[arg-type]
    outputs = weigh_outputs(executed.notebook)
    print(
        f"{path.name}: {len(text) / 1000:.1f} kB saved, widget state {widget_bytes / 1000:.1f} kB"
        f" in {len(state)} models, outputs {sum(outputs.values()) / 1000:.1f} kB"
        f"  (ran in {seconds:.0f} s)"
    )
    rows = (by_bytes + outputs).most_common(top)
    print(f"  {'kind':<44} {'kB':>8} {'models':>7}")
    print(f"  {'-' * 44} {'-' * 8} {'-' * 7}")
    for kind, count in rows:
        models = by_count.get(kind, "")
        print(f"  {kind:<44} {count / 1000:>8.1f} {models!s:>7}")
    print()
    return {
        "saved": len(text),
        "widget_state": widget_bytes,
        "models": len(state),
        "kinds": dict(rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="file names in notebooks/ (default: all)")
    parser.add_argument("--top", type=int, default=8, help="kinds to list per notebook")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    names = args.notebooks or [p.name for p in NOTEBOOKS]
    if SHORT and not args.notebooks:
        names = ["client.ipynb"]
        print("BENCH_SHORT=1: client.ipynb only")
    paths = [p for p in NOTEBOOKS if p.name in names]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as tmp:
        for path in paths:
            results[path.name] = report(path, Path(tmp) / path.stem, args.top)
    print(f"{'notebook':<20} {'saved kB':>9} {'widgets kB':>11} {'models':>7}")
    print(f"{'-' * 20} {'-' * 9} {'-' * 11} {'-' * 7}")
    for name, row in results.items():
        print(
            f"{name:<20} {row['saved'] / 1000:>9.1f} {row['widget_state'] / 1000:>11.1f}"
            f" {row['models']:>7}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
