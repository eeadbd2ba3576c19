"""fal's own Python client against the emulator: `run` (fal.run's synchronous shape),
`subscribe` (the queue) and `upload_file` (storage). fal-client builds its URLs from module
constants with a fixed ``https://`` scheme, so the test points those at the emulator; with that,
any fal user can try code offline."""

from __future__ import annotations

import httpx
import pytest

from fluxwidget.emulator import Emulator

fal_client = pytest.importorskip("fal_client")
fal_module = pytest.importorskip("fal_client.client")


@pytest.fixture
def fal(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(fal_module, "RUN_URL_FORMAT", f"{emu.url}/run/")
    monkeypatch.setattr(fal_module, "QUEUE_URL_FORMAT", f"{emu.url}/")
    monkeypatch.setattr(fal_module, "REST_URL", emu.url)
    monkeypatch.setattr(fal_module, "CDN_URL", emu.url)
    return fal_client.SyncClient(key=emu.api_key)


def test_run_gets_the_result_in_the_reply(fal: object, emu: Emulator) -> None:
    before = emu.submit_count
    result = fal.run("fal-ai/flux-lora", {"prompt": "a fox", "image_size": "square"})  # type: ignore[attr-defined]
    (image,) = result["images"]
    assert (image["width"], image["height"]) == (512, 512)
    assert ("POST", "/run/fal-ai/flux-lora", 200) in emu.calls
    assert emu.submit_count == before + 1


def test_run_refuses_what_fal_refuses(fal: object, emu: Emulator) -> None:
    # accepted, then failed with fal's 422 detail, as fal's queue does with a bad input
    with pytest.raises(Exception, match="num_inference_steps"):
        fal.run("fal-ai/flux-lora", {"prompt": "x", "num_inference_steps": 99})  # type: ignore[attr-defined]


def test_subscribe_follows_the_queue(fal: object, emu: Emulator) -> None:
    before = emu.submit_count
    result = fal.subscribe("fal-ai/flux-lora", {"prompt": "a fox", "num_inference_steps": 4})  # type: ignore[attr-defined]
    assert result["images"]
    assert emu.submit_count == before + 1


def test_upload_file_then_image_to_image(fal: object, emu: Emulator, tmp_path: object) -> None:
    from pathlib import Path

    from PIL import Image

    photo = Path(str(tmp_path)) / "photo.png"
    Image.new("RGB", (320, 240), (10, 200, 90)).save(photo)
    url = fal.upload_file(photo)  # type: ignore[attr-defined]
    assert httpx.get(url).content == photo.read_bytes()
    result = fal.run(  # type: ignore[attr-defined]
        "fal-ai/flux-lora/image-to-image", {"prompt": "a fox", "image_url": url, "strength": 0.5}
    )
    assert (result["images"][0]["width"], result["images"][0]["height"]) == (320, 240)
