"""Execute the notebooks in ``notebooks/`` with nbclient, as a person pressing Run All would.

Shared by ``test_notebooks.py`` (the development venv's kernel) and ``test_binder.py`` (a kernel
from a fresh environment built from ``binder/`` alone).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED_NOTEBOOKS = {"quickstart.ipynb", "exploring.ipynb", "sweeps.ipynb", "client.ipynb"}

KEY_VARIABLES = ("FAL_KEY", "FAL_KEY_ID", "FAL_KEY_SECRET")
CELL_TIMEOUT = 120
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"

# Appended to each notebook before it runs, removed before its output is inspected: it reveals the
# emulator's key (the key the notebook's client used), which must appear nowhere in the result.
KEY_PROBE_MARKER = "FLUXWIDGET-KEY-PROBE:"
KEY_PROBE = f"""
from fluxwidget.emulator import shared_emulator as _shared_emulator

print({KEY_PROBE_MARKER!r} + _shared_emulator().api_key)
"""


@dataclass
class Executed:
    notebook: nbformat.NotebookNode
    secrets: list[str]
    workdir: Path

    def text(self) -> str:
        """The executed notebook as saved, JSON text (outputs and widget state included)."""
        return nbformat.writes(self.notebook)

    def outputs(self) -> list[tuple[int, nbformat.NotebookNode]]:
        """Every output of every code cell, with the cell's index."""
        return [
            (index, output)
            for index, cell in enumerate(self.notebook.cells)
            if cell.cell_type == "code"
            for output in cell.outputs
        ]

    def printed(self) -> str:
        """All text the cells printed or returned (streams and ``text/plain`` results)."""
        parts = []
        for _index, output in self.outputs():
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(str(output.data.get("text/plain", "")))
        return "\n".join(parts)

    def widget_state(self) -> dict[str, object]:
        widgets = self.notebook.metadata.get("widgets", {})
        state = widgets.get(WIDGET_STATE_MIME, {}).get("state", {})
        return dict(state)


PANEL_NOTEBOOK_CELLS = (
    "from fluxwidget import FluxPanel\n\n"
    "panel = FluxPanel()\n"
    "panel.set(prompt='a tiger eye', num_images=2, num_inference_steps=4, seed=7)\n"
    "panel",
    "first = await panel.generate()",
    "second = await panel.generate(num_images=1, seed=8)\nlen(panel.runs)",
)
"""A small notebook with the panel that makes 2 + 1 images (on the emulator without a key)."""


def write_panel_notebook(path: Path) -> Path:
    """Write the small panel notebook (no outputs) to `path`."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in PANEL_NOTEBOOK_CELLS]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def kernel_environment(workdir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The kernel's environment: no fal key (so: the emulator) unless ``extra`` sets one, IPython
    state kept in workdir, runs saved under ``workdir/fluxwidget-runs`` (the kernel's cwd)."""
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARIABLES}
    for name in (
        "FLUXWIDGET_BASE_URL",
        "FLUXWIDGET_AUTH_SCHEME",
        "FLUXWIDGET_RUNS",
        "JUPYTER_PATH",
    ):
        env.pop(name, None)
    ipython = workdir / ".ipython"
    ipython.mkdir(exist_ok=True)
    env["IPYTHONDIR"] = str(ipython)
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def kernel_manager(python: str, workdir: Path) -> KernelManager:
    """A kernel manager whose only kernelspec runs ``python -m ipykernel_launcher``."""
    kernels = workdir / ".kernels"
    spec_dir = kernels / "python3"
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(kernels)], ensure_native_kernel=False)
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def execute_notebook(
    path: Path,
    workdir: Path,
    python: str | None = None,
    env: dict[str, str] | None = None,
) -> Executed:
    """Run ``path`` top to bottom in ``workdir`` (a copy; cwd of the kernel) and return it.

    ``env`` adds to the kernel's environment (a fake key, say): its values count as secrets.

    Raises nbclient's CellExecutionError on the first failing cell.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(KEY_PROBE.strip()))

    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        km=kernel_manager(python or sys.executable, workdir),
        resources={"metadata": {"path": str(workdir)}},
        store_widget_state=True,
        allow_errors=False,
        record_timing=False,
    )
    client.execute(env=kernel_environment(workdir, env))

    probe = nb.cells.pop()
    printed = "".join(out.get("text", "") for out in probe.get("outputs", []))
    secrets = [
        line.removeprefix(KEY_PROBE_MARKER).strip()
        for line in printed.splitlines()
        if line.startswith(KEY_PROBE_MARKER)
    ]
    assert secrets, f"the key probe printed nothing: {printed!r}"
    assert all(secrets), f"the key probe printed an empty key: {printed!r}"
    secrets += [value for value in (env or {}).values() if value]
    nbformat.write(nb, copy)
    return Executed(notebook=nb, secrets=secrets, workdir=workdir)


def assert_no_key_material(executed: Executed) -> None:
    """No key used in the run appears in the executed notebook, widget state included."""
    text = executed.text()
    for secret in executed.secrets:
        assert secret not in text, "the notebook's saved outputs or widget state contain the key"
    for scheme in ("Key ", "Bearer "):
        for secret in executed.secrets:
            assert f"{scheme}{secret}" not in text
    assert "FLUXWIDGET-KEY-PROBE" not in text
