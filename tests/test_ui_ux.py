"""Issue 17's first ten minutes: the price next to Generate, captions with steps and guidance,
a quiet Sweep tab until there is input, Confirm shown only while a confirmation waits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fluxwidget import FluxClient, sweep
from fluxwidget.emulator import Emulator
from fluxwidget.schema import FluxLoraInput
from fluxwidget.sweeps import UnitPrice
from fluxwidget.sweeps.cost import DEFAULT_PRICE, estimate_cost
from fluxwidget.ui import FluxPanel
from fluxwidget.ui.gallery import GalleryImage, ImageGallery, caption
from fluxwidget.ui.sweep_form import HINT, SweepForm
from fluxwidget.ui.sweep_view import SweepView

RED = "#b00020"


@pytest.fixture
async def client(emu: Emulator) -> AsyncIterator[FluxClient]:
    async with FluxClient(api_key=emu.api_key, base_url=emu.url) as flux:
        yield flux


@pytest.fixture
async def panel(client: FluxClient) -> AsyncIterator[FluxPanel]:
    flux_panel = FluxPanel(client)
    yield flux_panel
    await flux_panel.wait()
    flux_panel.close()


def test_brief_estimate_says_images_times_megapixels() -> None:
    params = FluxLoraInput(prompt="a fox", image_size="landscape_4_3", num_images=2)
    assert estimate_cost([params], DEFAULT_PRICE).brief() == "≈ $0.07 (2 × 1 MP)"
    per_image = UnitPrice(0.02, "image", "test")
    assert estimate_cost([params], per_image).brief() == "≈ $0.04 (2 images)"


async def test_price_next_to_generate_follows_the_form_and_the_servers_price(
    panel: FluxPanel,
) -> None:
    panel.form.prompt.value = ""
    assert panel.price_label.layout.display == "none"  # invalid form: no price
    panel.set(prompt="a fox", image_size="landscape_4_3", num_images=1)
    assert panel.price_label.layout.display is None
    assert "≈ $0.035 (1 × 1 MP)" in panel.price_label.value
    assert "default" in panel.price_label.value  # the tooltip says where the price is from
    panel.set(num_images=2)
    assert "≈ $0.07 (2 × 1 MP)" in panel.price_label.value
    panel.set(image_size={"width": 1536, "height": 1024})
    assert "(2 × 2 MP)" in panel.price_label.value
    price = await panel.load_price()  # the emulator's price: shown, nothing billed
    assert price.emulated
    assert panel.unit_price.emulated
    assert "nothing is billed" in panel.price_label.value
    panel.form.prompt.value = ""
    assert panel.price_label.layout.display == "none"
    assert panel.price_label.value == ""


async def test_the_price_is_fetched_in_the_background_when_made_on_a_loop(
    panel: FluxPanel,
) -> None:
    await panel.wait()
    assert panel.unit_price.emulated


def test_captions_carry_steps_and_guidance_like_automatic1111() -> None:
    text = caption(3, 0, 1, 7, (1024, 768), steps=28, guidance=3.5)
    assert text == "#3 · seed 7 · 28 steps · cfg 3.5 · 1024×768"
    assert caption(3, 0, 1, 7, (1024, 768)) == "#3 · seed 7 · 1024×768"  # as before
    gallery = ImageGallery()
    gallery.add_run("r", "1", [GalleryImage(b"x", 1024, 768)], seed=7, steps=1, guidance=2.0)
    assert "seed 7 · 1 step · cfg 2 · 1024×768" in gallery.entry("r/0")["caption"]
    gallery.close()


async def test_panel_results_captions_show_steps_and_guidance(panel: FluxPanel) -> None:
    await panel.generate(prompt="a fox", seed=7, num_inference_steps=12, guidance_scale=4.5)
    entry_id = panel.gallery.entry_ids()[0]
    assert "seed 7 · 12 steps · cfg 4.5" in panel.gallery.entry(entry_id)["caption"]
    assert "12 steps · cfg 4.5" in panel.static_html()


async def test_sweep_form_is_quiet_until_something_is_typed(emu: Emulator) -> None:
    client = FluxClient(api_key=emu.api_key, base_url=emu.url)
    params = FluxLoraInput(prompt="a tiger eye", image_size="square")
    form = SweepForm(lambda: params, lambda: client)
    assert HINT.split()[0] in form.summary.value
    assert RED not in form.summary.value
    form.fields[0].value = "guidance_scale"  # a field chosen, nothing typed: still a hint
    assert RED not in form.summary.value
    assert form.start_button.disabled
    form.values[0].value = "2,99"
    assert RED in form.summary.value
    assert form.start_button.disabled
    form.values[0].value = "2,5"
    assert RED not in form.summary.value
    assert not form.start_button.disabled
    form.values[0].value = "  "
    assert RED not in form.summary.value
    assert form.start_button.disabled
    assert form.start_button.layout.width == "140px"  # keeps its size beside a long summary
    assert form.start_button.layout.flex == "0 0 auto"
    await client.aclose()


async def test_confirm_is_shown_only_while_a_confirmation_waits(
    emu: Emulator, tmp_path: Path
) -> None:
    client = FluxClient(api_key=emu.api_key, base_url=emu.url)
    cheap = sweep("a fox", "seed=1-2", client=client, out=tmp_path / "cheap", export=False)
    view = SweepView(cheap)
    confirm = view.buttons["Confirm and start"]
    assert confirm.layout.display == "none"
    await cheap
    assert confirm.layout.display == "none"
    assert view.buttons["Cancel all"].layout.display is None  # its own layout: others stay

    big = sweep(
        "a fox",
        "guidance_scale=1-12",
        client=client,
        out=tmp_path / "big",
        price=UnitPrice(1.0, "megapixel", "test"),
        export=False,
    )
    pending = SweepView(big)
    confirm = pending.buttons["Confirm and start"]
    with pytest.raises(ValueError, match="above"):
        await big
    assert confirm.layout.display is None
    assert not confirm.disabled
    confirm.click()
    assert confirm.layout.display == "none"
    await big
    assert confirm.layout.display == "none"
    await client.aclose()
