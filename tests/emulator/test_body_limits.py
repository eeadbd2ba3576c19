"""The emulator refuses what would hurt it: a huge submit body (413) or JSON nested so deep that
parsing it recurses without end (422), before any job exists — and still takes normal ones."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from fluxwidget.emulator import Emulator
from fluxwidget.emulator.app import MAX_JSON_DEPTH, MAX_SUBMIT_BYTES

APP = "/fal-ai/flux-lora"


def _nested(depth: int) -> str:
    """A prompt wrapped in `depth` levels of objects and lists (the top object counts)."""
    inner: object = "x"
    for level in range(depth - 1):
        inner = [inner] if level % 2 else {"a": inner}
    return json.dumps({"prompt": "deep", "extra": inner})


def test_a_body_over_the_cap_is_answered_413(emu: Emulator, http: httpx.Client) -> None:
    before = emu.submit_count
    body = json.dumps({"prompt": "x" * (MAX_SUBMIT_BYTES + 10)})
    reply = http.post(APP, content=body, headers={"content-type": "application/json"})
    assert reply.status_code == 413
    assert "too large" in reply.json()["detail"]
    assert emu.submit_count == before


def test_a_streamed_body_without_a_length_is_cut_at_the_cap(
    emu: Emulator, http: httpx.Client
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"prompt": "'
        for _ in range(4):
            yield b"x" * (MAX_SUBMIT_BYTES // 2)
        yield b'"}'

    reply = http.post(APP, content=chunks(), headers={"content-type": "application/json"})
    assert reply.status_code == 413


def test_a_60_mb_body_is_refused_without_being_read(emu: Emulator, http: httpx.Client) -> None:
    body = b'{"prompt": "' + b"x" * (60 << 20) + b'"}'
    try:
        reply = http.post(APP, content=body, headers={"content-type": "application/json"})
    except httpx.TransportError:  # the server may close before the client has sent it all
        pass
    else:
        assert reply.status_code == 413
    assert http.post(APP, json={"prompt": "after"}).status_code == 200  # still serving


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 50_000])
def test_json_nested_beyond_recursion_is_a_422(
    emu: Emulator, http: httpx.Client, text: str
) -> None:
    before = emu.submit_count
    reply = http.post(APP, content=text, headers={"content-type": "application/json"})
    assert reply.status_code == 422
    (problem,) = reply.json()["detail"]
    assert problem["type"] == "json_too_deep"
    assert emu.submit_count == before


def test_json_one_level_too_deep_is_a_422_and_the_limit_itself_is_accepted(
    emu: Emulator, http: httpx.Client
) -> None:
    headers = {"content-type": "application/json"}
    deep = http.post(APP, content=_nested(MAX_JSON_DEPTH + 1), headers=headers)
    assert deep.status_code == 422
    assert f"deeper than {MAX_JSON_DEPTH}" in deep.json()["detail"][0]["msg"]
    # at the limit the body is read; its unknown field then fails the job, as fal does
    assert http.post(APP, content=_nested(MAX_JSON_DEPTH), headers=headers).status_code == 200


def test_a_normal_submit_is_untouched(emu: Emulator, http: httpx.Client) -> None:
    reply = http.post(APP, json={"prompt": "a fox", "loras": [{"path": "a/b", "scale": 0.5}]})
    assert reply.status_code == 200


def test_brackets_inside_strings_do_not_count_as_nesting(emu: Emulator, http: httpx.Client) -> None:
    prompt = '[{ a "quoted" \\ prompt ' + "[" * 200 + "{" * 200
    reply = http.post(APP, json={"prompt": prompt})
    assert reply.status_code == 200, reply.text
