"""The suite's own set-up: pytest-xdist's groups really apply.

`make test` runs two workers with ``--dist loadgroup`` so that browser tests share one worker
(one Chromium and one Jupyter server at a time) and Binder's environment is built once. With
pytest 9.2 and pytest-xdist 3.8 the groups were ignored without a word (both workers ran
browsers, and Binder was built twice); pyproject.toml pins pytest below 9.2, and this test
fails if a pair that ignores the groups comes back.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.xdist_group("suite")


def test_xdist_groups_apply_under_loadgroup(request: pytest.FixtureRequest) -> None:
    grouped = bool(getattr(request.config.option, "loadgroup", False))
    suffix = "@suite" if grouped else "::test_xdist_groups_apply_under_loadgroup"
    assert request.node.nodeid.endswith(suffix), (
        f"{request.node.nodeid}: pytest-xdist did not apply xdist_group; this pytest and "
        "pytest-xdist do not work together (see the pytest pin in pyproject.toml)"
    )
