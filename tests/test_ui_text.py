"""The ui's pure helpers: status texts, code snippets, captions, summaries, banner."""

from __future__ import annotations

import ast
import json
import shlex

import pytest

from fluxwidget.client import key_from_environment
from fluxwidget.errors import AuthenticationError, FalError, ValidationFailedError
from fluxwidget.schema import FieldProblem, FluxLoraInput, InputError, validate_input
from fluxwidget.ui import codegen, status
from fluxwidget.ui.controls import size_options
from fluxwidget.ui.gallery import caption
from fluxwidget.ui.keys import banner_html

SECRET = "key-id:very-secret-value"


def test_status_texts() -> None:
    assert status.queued_text(3) == "Queued — position 3"
    assert status.queued_text(0) == "Queued — next in line"
    assert status.queued_text(None) == "Queued"
    assert status.running_text(4.25, (12, 28)) == "Running 4.2 s — step 12/28"
    assert status.running_text(1.0) == "Running 1.0 s"
    assert (
        status.done_text(7.94, 6.1, 123, 2)
        == "Done in 7.9 s (inference 6.1 s) · seed 123 · 2 images"
    )
    assert status.done_text(1.0, None, None, 1, nsfw=1).endswith("1 image · 1 flagged NSFW")
    assert status.cancel_text("ALREADY_COMPLETED") == "Already finished — nothing to cancel"
    assert status.cancel_text("CANCELLATION_REQUESTED").startswith("Cancel requested")


def test_error_texts() -> None:
    with pytest.raises(InputError) as info:
        validate_input(prompt="x", num_images=7)
    assert status.error_text(info.value).startswith("Invalid input — num_images: 7 is not allowed")
    assert "from 1 to 4" in status.error_text(info.value)
    auth = AuthenticationError("401: the key was refused — set FAL_KEY (nope)", status_code=401)
    assert status.error_text(auth).startswith("401: the key was refused — set FAL_KEY")
    bare = AuthenticationError("forbidden", status_code=403)
    assert status.error_text(bare) == "403: forbidden — set FAL_KEY or paste a key above"
    problem = FieldProblem("prompt", "", "bad")
    rejected = ValidationFailedError("422: rejected", problems=[problem], status_code=422)
    assert status.error_text(rejected) == "422: rejected"
    assert status.error_text(FalError("network down")) == "network down"
    assert status.error_text(RuntimeError("boom")) == "Error: RuntimeError: boom"


def _params() -> FluxLoraInput:
    return FluxLoraInput(
        prompt="it's a <tiger>",
        image_size={"width": 640, "height": 480},
        seed=5,
        loras=[{"path": "owner/repo", "scale": 0.7}],
        num_images=2,
    )


def test_snippets_never_contain_the_key_and_are_valid() -> None:
    target = codegen.Target("https://proxy.example/api", "Bearer")
    code = codegen.snippets(_params(), target)
    assert set(code) == {"fluxwidget", "httpx", "cURL"}
    for text in code.values():
        assert SECRET not in text
    assert 'os.environ["FAL_KEY"]' in code["fluxwidget"]
    assert "auth_scheme='Bearer'" in code["fluxwidget"]
    assert "os.environ['FAL_KEY']" in code["httpx"]
    assert '"Authorization: Bearer $FAL_KEY"' in code["cURL"]
    # the Python snippets parse (top-level await is allowed in notebooks)
    compile(code["fluxwidget"], "<snippet>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    ast.parse(code["httpx"])
    assert "'https://proxy.example/api/fal-ai/flux-lora'" in code["httpx"]


def test_fluxwidget_snippet_rebuilds_the_same_input() -> None:
    params = _params()
    code = codegen.fluxwidget_snippet(params, codegen.Target("https://queue.example"))
    call = code.split("params = ", 1)[1].split("\nresult", 1)[0]
    rebuilt = eval(call, {"FluxLoraInput": FluxLoraInput})  # our own generated literal
    assert rebuilt == params
    assert "auth_scheme" not in code  # Key is the default


def test_curl_body_is_the_payload() -> None:
    params = _params()
    code = codegen.curl_snippet(params, codegen.Target("https://queue.example"))
    words = shlex.split(code.split("\n#")[0].replace("\\\n", " "))
    body = json.loads(words[words.index("-d") + 1])
    assert body == params.to_payload()
    assert words[4] == "https://queue.example/fal-ai/flux-lora"


def test_size_options_and_caption() -> None:
    labels = [label for label, _ in size_options()]
    assert labels[0] == "square_hd — 1024×1024"
    assert labels[-1] == "Custom…"
    assert len(labels) == 7
    assert caption(3, 1, 4, 123, (1024, 768)) == "#3 · 2/4 · seed 123 · 1024×768"
    assert caption(1, 0, 1, None, (512, 512)) == "#1 · random seed · 512×512"
    big = caption(2, 0, 1, 5361202149059313751, (512, 512))
    assert "seed 5361202149059313751" in big


def test_env_key_and_banner() -> None:
    assert key_from_environment({}) is None
    assert key_from_environment({"FAL_KEY": "x"}) == "x"
    assert key_from_environment({"FAL_KEY_ID": "a"}) is None
    assert key_from_environment({"FAL_KEY_ID": "a", "FAL_KEY_SECRET": "b"}) == "a:b"
    offline = banner_html("emulator", "http://127.0.0.1:1", "fal-ai/flux-lora")
    assert "emulator" in offline
    assert "FAL_KEY" in offline
    online = banner_html("fal", "https://x.example/<b>", "fal-ai/flux-lora")
    assert "&lt;b&gt;" in online
    assert "<b>" not in online
    custom = banner_html("client", "http://127.0.0.1:9", "fal-ai/flux-lora", emulator=True)
    assert "emulator" in custom
    assert "placeholders" in custom


def test_upload_progress_reads_in_megabytes() -> None:
    from fluxwidget.ui.status import upload_text

    assert upload_text("/data/loras/style.safetensors", 40_000_000, 120_000_000) == (
        "Uploading style.safetensors: 40/120 MB"
    )
    assert upload_text("photo.png", 12_000, 300_000) == "Uploading photo.png: 12/300 kB"
