"""The panel's weight and the kernel's responsiveness, measured.

1. Models and saved widget state: an empty ``FluxPanel``, then per shown image (``--images``
   images in runs of 4), from ``Widget.get_manager_state()`` (what a notebook saved with widget
   state stores).
2. Memory per image over ``--memory-images`` images (tracemalloc: Python allocations still held
   after a full garbage collection; the emulator runs in a child process so that its stored
   images do not count).
3. Event-loop lag in a real kernel (ipykernel started with jupyter_client) while 64 images arrive
   on the emulator: a task sleeps 10 ms in a loop and records how late it wakes. Two rows: the
   shared emulator (a child process, the default) and an ``Emulator()`` in the kernel's own
   process (the old default) for contrast.

Run: .venv/bin/python benchmarks/bench_panel.py [--images 64] [--memory-images 256]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import textwrap
import time
import tracemalloc

import ipywidgets as widgets
from ipywidgets.widgets.widget import _instances

from fluxwidget.client import FluxClient
from fluxwidget.emulator import Emulator, EmulatorProcess
from fluxwidget.ui import FluxPanel

RUN_SIZE = 4  # images per run (fal's maximum)


def saved_state(models: list[widgets.Widget]) -> int:
    state = widgets.Widget.get_manager_state(drop_defaults=True, widgets=models)
    return len(json.dumps(state))


async def weigh(images: int) -> None:
    with Emulator(workers=4, seconds_per_step=0.0005) as emu:
        async with FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False) as client:
            before = set(_instances)
            panel = FluxPanel(client)
            mine = [_instances[i] for i in set(_instances) - before]
            empty_models, empty_state = len(mine), saved_state(mine)
            panel.set(prompt="a tiger eye", num_inference_steps=4, num_images=RUN_SIZE)
            for _ in range(images // RUN_SIZE):
                await panel.generate()
            mine = [_instances[i] for i in set(_instances) - before]
            models, state = len(mine), saved_state(mine)
            shown = panel.gallery.entry_count
            thumbs = sum(map(len, panel.gallery.thumbs))
            print(f"empty panel: {empty_models} widget models, {empty_state / 1000:.1f} kB saved")
            print(
                f"after {shown} images ({shown // RUN_SIZE} jobs): {models} models, "
                f"{state / 1000:.1f} kB saved"
            )
            print(
                f"per image: {(models - empty_models) / shown:.2f} models, "
                f"{(state - empty_state) / shown / 1000:.1f} kB saved "
                f"(its thumbnail: {thumbs / shown / 1000:.1f} kB, base64 ×4/3)"
            )
            panel.close()


async def weigh_history(earlier: int) -> None:
    """A new panel over a runs folder with `earlier` finished runs (each an earlier panel
    session with two jobs, so its own run folder): what its history adds."""
    from fluxwidget.pipeline import JobPipeline
    from fluxwidget.schema import FluxLoraInput
    from fluxwidget.store.runs import Run

    root = tempfile.mkdtemp(prefix="bench-history-")
    with Emulator(workers=4, seconds_per_step=0.0005) as emu:
        async with FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False) as client:
            for n in range(earlier):
                pipeline = JobPipeline(client, Run.create(root, kind="panel"))
                for k in range(2):
                    params = FluxLoraInput(prompt=f"an earlier run {n}.{k}", num_inference_steps=4)
                    await pipeline.run(params)
                await pipeline.run_folder.flush()
            before = set(_instances)
            bare = FluxPanel(client, runs_root=tempfile.mkdtemp(prefix="bench-empty-"))
            await bare.wait()
            mine = [_instances[i] for i in set(_instances) - before]
            empty = saved_state(mine)
            bare.close()
            before = set(_instances)
            panel = FluxPanel(client, runs_root=root)
            await panel.wait()
            mine = [_instances[i] for i in set(_instances) - before]
            state = saved_state(mine)
            shown = panel.history.list.entry_count
            print(
                f"empty panel over {shown} earlier runs: {state / 1000:.1f} kB saved "
                f"(+{(state - empty) / 1000:.1f} kB for the history; its thumbnails are asked "
                "for by the browser, not saved)"
            )
            panel.close()


def photo_weight() -> None:
    """Saved state added by one photo-like 1024² image shown in a gallery (bench_thumbnails)."""
    from bench_thumbnails import photo_like

    from fluxwidget.ui.gallery import GalleryImage, ImageGallery
    from fluxwidget.ui.jobs import make_thumbnail

    gallery = ImageGallery()
    empty = saved_state([gallery])
    thumb, width, height = make_thumbnail(photo_like())
    summary = "#1 · seed 7 · 'a tiger eye' · landscape_4_3 · 28 steps · guidance 3.5 · 4 images"
    gallery.add_run("r1", "1", [GalleryImage(thumb, width, height)] * 4, seed=7, summary=summary)
    per = (saved_state([gallery]) - empty) / 4
    print(
        f"photo-like 1024x1024: thumbnail {len(thumb) / 1000:.1f} kB, "
        f"{per / 1000:.1f} kB saved per shown image"
    )
    gallery.close()


async def memory(images: int) -> None:
    # the emulator in a child process: its stored images must not count as the panel's memory
    emu = EmulatorProcess(workers=4, seconds_per_step=0.0005).start()
    try:
        async with FluxClient(api_key=emu.api_key, base_url=emu.url, journal=False) as client:
            panel = FluxPanel(client)
            panel.set(prompt="a tiger eye", num_inference_steps=2, num_images=RUN_SIZE)
            await panel.generate()  # warm up: imports, pools, first-use caches
            gc.collect()
            tracemalloc.start()
            start = tracemalloc.get_traced_memory()[0]
            for _ in range(images // RUN_SIZE):
                await panel.generate()
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - start
            tracemalloc.stop()
            print(
                f"memory: {held / 1e6:.1f} MB held after {images} more images = "
                f"{held / images / 1000:.1f} kB per image"
            )
            panel.close()
    finally:
        emu.stop()


KERNEL_CODE = """
import asyncio, time, statistics
from fluxwidget import FluxPanel, FluxClient, Emulator

async def lag_during(panel, jobs):
    lags, running = [], True
    async def probe():
        while running:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - t - 0.01) * 1000)
    task = asyncio.create_task(probe())
    panel.set(prompt="a tiger eye", num_inference_steps=8, num_images=4, image_size="square_hd")
    started = time.perf_counter()
    await asyncio.gather(*(panel.generate() for _ in range(jobs)))
    wall = time.perf_counter() - started
    running = False
    await task
    lags.sort()
    p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    return f"{p(0.5):6.1f} {p(0.99):7.1f} {lags[-1]:7.1f} {wall:7.1f}"

MODE = "@MODE@"
if MODE == "child process":
    panel = FluxPanel()  # the shared emulator, in its own process
    row = await lag_during(panel, @JOBS@)
else:
    emu = Emulator(workers=2).start()  # in this (the kernel's) process, as many workers
    panel = FluxPanel(FluxClient(api_key=emu.api_key, base_url=emu.url))
    row = await lag_during(panel, @JOBS@)
    emu.stop()
print("ROW", row)
"""


def kernel_lag(images: int) -> None:
    from jupyter_client.manager import start_new_kernel

    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_KEY")}
    print(f"event-loop lag in a real kernel while {images} images arrive (ms):")
    print(f"{'emulator':<16}{'p50':>7}{'p99':>8}{'max':>8}{'wall s':>8}")
    for mode in ("child process", "kernel process"):
        manager, client = start_new_kernel(kernel_name="python3", env=env)
        try:
            lines: list[str] = []

            def keep(msg: dict[str, object], lines: list[str] = lines) -> None:
                content = msg.get("content")
                if isinstance(content, dict) and "text" in content:
                    lines.append(str(content["text"]))

            code = textwrap.dedent(KERNEL_CODE).replace("@MODE@", mode)
            code = code.replace("@JOBS@", str(images // RUN_SIZE))
            reply = client.execute_interactive(code, timeout=600, output_hook=keep)
            if reply["content"]["status"] != "ok":
                print(mode, "failed:", reply["content"].get("evalue"), "".join(lines))
                continue
            row = next(line for line in "".join(lines).splitlines() if line.startswith("ROW"))
            print(f"{mode:<16}{row[4:]}")
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--memory-images", type=int, default=256)
    parser.add_argument("--earlier-runs", type=int, default=50)
    parser.add_argument("--skip-kernel", action="store_true")
    args = parser.parse_args()
    # the panel saves every image into a runs folder: a temporary one, not ./fluxwidget-runs
    os.environ.setdefault("FLUXWIDGET_RUNS", tempfile.mkdtemp(prefix="bench-panel-"))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    started = time.monotonic()
    asyncio.run(weigh(args.images))
    photo_weight()
    asyncio.run(weigh_history(args.earlier_runs))
    asyncio.run(memory(args.memory_images))
    if not args.skip_kernel:
        kernel_lag(args.images)
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
