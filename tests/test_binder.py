"""Binder's configuration, proved without Docker: a fresh virtual environment built from the files
in ``binder/`` alone (as repo2docker would: pip from the repository root, then postBuild), and
every notebook executed in a kernel from it.

The Python is the one ``binder/runtime.txt`` names when this machine has it (``python3.12`` on
PATH or under pyenv), else the interpreter running the tests. pip's cache is shared, so a second
run takes well under a minute.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:  # tests/ is on sys.path in pytest's default import mode; a package layout also works
    from notebook_exec import NOTEBOOKS, REPO_ROOT, assert_no_key_material, execute_notebook
except ImportError:  # pragma: no cover
    from tests.notebook_exec import (
        NOTEBOOKS,
        REPO_ROOT,
        assert_no_key_material,
        execute_notebook,
    )

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("binder")]  # one build per run

BINDER = REPO_ROOT / "binder"
INSTALL_TIMEOUT = 600


def runtime_version() -> str:
    text = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(3\.\d+)", text)
    assert match, f"binder/runtime.txt should read like python-3.12, not {text!r}"
    return match.group(1)


def find_python(version: str) -> tuple[str, str]:
    """An interpreter for ``version`` and where it came from; this one as a last resort."""
    override = os.environ.get("FLUXWIDGET_BINDER_PYTHON")
    candidates = [override] if override else []
    candidates.append(shutil.which(f"python{version}"))
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(pyenv_root.glob(f"versions/{version}.*/bin/python3"))]
    for candidate in candidates:
        if not candidate:
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate, f"python {version} as runtime.txt asks"
    here = "{}.{}".format(*sys.version_info[:2])
    return sys.executable, f"python {here}: no python {version} on this machine"


def run(cmd: list[str], *, env: dict[str, str], timeout: float = INSTALL_TIMEOUT) -> None:
    """Run a build step from the repository root; show its output only when it fails."""
    done = subprocess.run(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        output = f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}\n{output}")


@pytest.fixture(scope="session")  # its xdist group keeps every user on one worker
def binder_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The kernel interpreter of a fresh environment built from ``binder/`` alone."""
    base, origin = find_python(runtime_version())
    env_dir = tmp_path_factory.mktemp("binder") / "env"
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_PROGRESS_BAR"] = "off"
    env.pop("PYENV_VERSION", None)
    run([base, "-m", "venv", str(env_dir)], env=env)
    python = str(env_dir / "bin" / "python")
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(env_dir)
    run([python, "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt"], env=env)
    post_build = BINDER / "postBuild"
    if post_build.exists():
        run(["bash", str(post_build)], env=env)
    print(f"binder environment ({origin}) built in {time.monotonic() - started:.0f} s")
    return python


def test_binder_files() -> None:
    assert (BINDER / "requirements.txt").exists()
    lines = [
        line.strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert "-e ." in lines or "." in lines, "binder/requirements.txt must install this repository"
    unpinned = [line for line in lines if not line.startswith(("-e", ".")) and "==" not in line]
    assert not unpinned, f"pin every Binder requirement: {unpinned}"
    runtime_version()
    post_build = BINDER / "postBuild"
    if post_build.exists():
        assert "set -e" in post_build.read_text()


def _name(requirement: str) -> str:
    """The normalised project name of a requirement line (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_every_runtime_dependency_is_pinned_for_binder() -> None:
    """A dependency added to pyproject.toml but not to binder/requirements.txt would still be
    installed there (through ``-e .``), just unpinned: keep the two in step."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(dep) for dep in project["dependencies"]}
    pinned = {
        _name(line)
        for line in (BINDER / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert not wanted - pinned, f"pin these in binder/requirements.txt: {sorted(wanted - pinned)}"


@pytest.mark.timeout(INSTALL_TIMEOUT + 60)  # the first user of binder_python builds it
def test_binder_environment_has_the_package(binder_python: str) -> None:
    probe = subprocess.run(
        [
            binder_python,
            "-c",
            "import fluxwidget, ipywidgets, ipykernel, jupyterlab, jupyterlab_widgets;"
            "print(fluxwidget.__file__)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).is_relative_to(REPO_ROOT)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs_in_binder_environment(
    binder_python: str, path: Path, tmp_path: Path
) -> None:
    executed = execute_notebook(path, tmp_path / path.stem, python=binder_python)
    assert_no_key_material(executed)


def test_post_build_turns_on_saved_widget_state(tmp_path: Path) -> None:
    """binder/postBuild (and make demo) write JupyterLab's settings override into the
    environment, keeping settings already there."""
    prefix = tmp_path / "env"
    settings = prefix / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}')
    code = (
        "import runpy, sys; sys.prefix = sys.argv[1]; "
        "runpy.run_path(sys.argv[2], run_name='__main__')"
    )
    script = BINDER / "enable_widget_state.py"
    subprocess.run([sys.executable, "-c", code, str(prefix), str(script)], check=True)
    written = json.loads(settings.read_text())
    assert written["@jupyter-widgets/jupyterlab-manager:plugin"] == {"saveState": True}
    assert written["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert "enable_widget_state.py" in (BINDER / "postBuild").read_text()
