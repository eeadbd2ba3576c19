"""The names fluxwidget promises: what `import fluxwidget` exports, the error tree, py.typed."""

from __future__ import annotations

import importlib
import inspect
import warnings
from pathlib import Path

import pytest

import fluxwidget
from fluxwidget import errors

# Add a name here when it joins fluxwidget.__all__ (and only then).
PUBLIC_NAMES = {
    *errors.__all__,
    "Emulator",
    "FluxClient",
    "FluxLoraInput",
    "FluxLoraOutput",
    "FluxPanel",
    "ImageSize",
    "ImageToImageInput",
    "InpaintingInput",
    "LoraWeight",
    "RunResults",
    "SweepRun",
    "blind_ab",
    "choose_client",
    "default_client",
    "emulator_client",
    "load_run",
    "sweep",
}

CLIENT_NAMES = {
    "ClientConfig",
    "ClientSettings",
    "HandleBackend",
    "JobClient",
    "JobHandle",
    "Journal",
    "Completed",
    "FluxClient",
    "InProgress",
    "Limits",
    "LogEntry",
    "Queued",
    "RequestHandle",
    "RetryPolicy",
    "StatusUpdate",
    "UploadCache",
    "UploadOptions",
    "Waiting",
    "key_from_environment",
}


def test_top_level_exports_are_exactly_the_promised_ones() -> None:
    assert set(fluxwidget.__all__) == PUBLIC_NAMES
    for name in fluxwidget.__all__:
        assert getattr(fluxwidget, name) is not None


def test_client_exports() -> None:
    client = importlib.import_module("fluxwidget.client")
    assert set(client.__all__) == CLIENT_NAMES
    for name in client.__all__:
        assert getattr(client, name) is not None


def test_every_error_has_one_root() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    exceptions = [c for c in classes if inspect.isclass(c) and issubclass(c, BaseException)]
    assert len(exceptions) == len(classes) - 1  # all but FieldProblem
    for cls in exceptions:
        assert issubclass(cls, errors.FluxwidgetError), cls
    assert issubclass(errors.InputError, ValueError)
    assert not any(c.__name__ == "CancelledError" for c in exceptions)


def test_old_names_still_import() -> None:
    from fluxwidget.schema import FieldProblem, InputError

    assert InputError is errors.InputError
    assert FieldProblem is errors.FieldProblem
    with pytest.warns(DeprecationWarning, match="JobCancelledError"):
        old = errors.CancelledError  # type: ignore[attr-defined]
    assert old is errors.JobCancelledError
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert errors.AccountLockedError is errors.ForbiddenError


def test_version_has_one_source_and_py_typed_ships() -> None:
    package = Path(fluxwidget.__file__).parent
    assert (package / "py.typed").is_file()
    pyproject = (package.parent / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'path = "fluxwidget/__init__.py"' in pyproject
    assert fluxwidget.__version__.count(".") == 2
