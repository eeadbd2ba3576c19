"""The layering of docs/architecture.md, held against the code: no import cycle (imports inside
functions included), every module importable by its dotted name and not shadowed, every
exception under `FluxwidgetError`, and the light `import fluxwidget`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import subprocess
import sys
from types import ModuleType

import grimp
import pytest

import fluxwidget
from fluxwidget.errors import FluxwidgetError


def all_modules() -> list[str]:
    names = ["fluxwidget"]
    for info in pkgutil.walk_packages(fluxwidget.__path__, "fluxwidget."):
        if info.name != "fluxwidget.__main__":  # runs the CLI when imported
            names.append(info.name)
    return sorted(names)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("fluxwidget", cache_dir=None)


def test_no_import_cycle_between_modules(graph: grimp.ImportGraph) -> None:
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported == "fluxwidget" or importer == "fluxwidget":
                continue  # the package's lazy public names point up on purpose
            if graph.chain_exists(importer=imported, imported=importer):
                cycles.append((importer, imported))
    assert cycles == []


def test_nothing_below_the_ui_imports_widgets_or_the_notebook(graph: grimp.ImportGraph) -> None:
    def on_top(module: str) -> bool:
        return module.split(".")[:2] in (["fluxwidget", "ui"], ["fluxwidget", "cli"])

    heavy = {"ipywidgets", "anywidget", "IPython", "traitlets"}
    graph_ext = grimp.build_graph("fluxwidget", include_external_packages=True, cache_dir=None)
    offenders = [
        (module, imported)
        for module in graph_ext.modules
        if module.startswith("fluxwidget.")
        and not on_top(module)
        and module != "fluxwidget.__main__"  # `python -m fluxwidget` is the CLI
        for imported in graph_ext.find_modules_directly_imported_by(module)
        if imported.split(".")[0] in heavy or on_top(imported)
    ]
    assert offenders == []


@pytest.mark.parametrize("name", all_modules())
def test_every_module_is_importable_by_its_dotted_name(name: str) -> None:
    module = importlib.import_module(name)
    parent_name, _, last = name.rpartition(".")
    if parent_name:  # no function or class of the parent shadows the module
        parent = sys.modules[parent_name]
        assert getattr(parent, last, module) is module, f"{parent_name}.{last} is not the module"


def test_every_exception_class_derives_from_fluxwidget_error() -> None:
    strays = []
    for name in all_modules():
        module: ModuleType = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == name
                and not issubclass(value, FluxwidgetError)
            ):
                strays.append(f"{name}.{value.__name__}")
    assert strays == []


def test_import_fluxwidget_loads_no_widgets_and_no_server() -> None:
    code = (
        "import sys, fluxwidget;"
        "heavy = ('ipywidgets', 'IPython', 'anywidget', 'uvicorn', 'starlette');"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
