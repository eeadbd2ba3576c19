"""Write the notebooks in this folder from the cell sources below (no outputs, stable cell ids).

    python notebooks/build_notebooks.py          # rewrite the .ipynb files
    python notebooks/build_notebooks.py --check  # exit 1 if a .ipynb differs from its source

Edit the cells here, not in Jupyter, so that the notebooks stay reviewable and free of outputs;
``tests/test_notebooks.py`` checks that the committed files match.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

Cell = tuple[str, str]  # ("md" | "code", source)


def md(text: str) -> Cell:
    return ("md", text.strip("\n"))


def code(text: str) -> Cell:
    return ("code", text.strip("\n"))


ASK_FOR_KEY = code(
    """
import os

# Opt-in: set ASK_FOR_KEY = True and run this cell to type a fal key for this session only.
# getpass reads from the notebook's input box, so it needs a live kernel (it is skipped when the
# notebook runs unattended). The key stays in this kernel's memory; it is never saved in the file.
ASK_FOR_KEY = False

if ASK_FOR_KEY and not os.environ.get("FAL_KEY"):
    from getpass import getpass

    os.environ["FAL_KEY"] = getpass("fal key (kept for this session only): ").strip()
"""
)

CLIENT_SETUP = code(
    """
from fluxwidget import default_client
from fluxwidget.client import key_from_environment

# fal when a key is set (FAL_KEY, or FAL_KEY_ID + FAL_KEY_SECRET), else the built-in emulator:
# the same cells run both ways.
USING_FAL = key_from_environment() is not None
client = default_client()
print("Using", "fal" if USING_FAL else "the built-in emulator (no FAL_KEY set)", "at",
      client.config.base_url)
"""
)

KEY_HELP = md(
    """
**Running on fal.** Without a key, these cells run on fluxwidget's built-in **emulator**: a small
server on loopback inside this kernel that speaks fal's queue protocol and returns placeholder
images showing the prompt and parameters. To run on fal, set `FAL_KEY` before starting Jupyter
(`export FAL_KEY=...`), or, on Binder, set `ASK_FOR_KEY = True` in the next cell and type the key
when asked. Nothing else changes: the same cells run on either.
"""
)

QUICKSTART: list[Cell] = [
    md(
        """
# fluxwidget quickstart

**fluxwidget** is a playground for the FLUX LoRA text-to-image model on fal
(`fal-ai/flux-lora`) that lives in your notebook: every parameter of the model on one panel, a
live status line while the job is queued and running, and the images in a grid below.

**First images in two clicks:** *Run → Run All Cells*, then **Generate** on the panel.
"""
    ),
    md(
        """
## No key? The emulator

When no fal key is set, the panel runs on fluxwidget's built-in **emulator**: a small server,
started on loopback inside this kernel, that speaks fal's queue protocol — a queue with honest
positions, step logs while running, cancel — and returns **placeholder images** of exactly the
requested size that show the prompt, seed, steps, guidance and LoRAs. Nothing leaves the machine
and nothing is billed. A banner on the panel says when it is in use.

## Using your fal key

- **On your machine:** set the key in the shell before starting Jupyter:
  `export FAL_KEY="<key_id>:<key_secret>"` then `make demo` (or `jupyter lab`).
  `FAL_KEY_ID` + `FAL_KEY_SECRET` work too.
- **On Binder** (public, no secrets): paste the key into the panel's **fal key** field and press
  Enter. The panel keeps it in Python only, for as long as the kernel runs, and clears the field
  at once, so the key never ends up in the saved notebook. Or use the opt-in `getpass` cell below
  (before the panel cell), which sets `FAL_KEY` for this kernel.
- Never write a key into a cell: notebooks get shared.
"""
    ),
    ASK_FOR_KEY,
    md(
        """
## The panel

Set the prompt and any parameter (hover a control for its description), then click
**Generate**. Several jobs may run at once; each has its own status row and **Cancel**. The
kernel stays free while jobs run.
"""
    ),
    code(
        """
PROMPT = (
    "Extreme close-up of a single tiger eye, direct frontal view. Detailed iris and pupil. "
    'The word "FLUX" is painted over it in big, white brush strokes.'
)
"""
    ),
    code(
        """
from fluxwidget import FluxPanel

panel = FluxPanel()  # fal when FAL_KEY is set, else the built-in emulator
panel.set(prompt=PROMPT)
panel
"""
    ),
    md(
        """
## From Python

The panel is also a Python object (`await` works at the top level of a cell):

```python
panel.set(num_images=2, seed=7)        # fill the controls
result = await panel.generate()        # same as clicking Generate
panel.last_result.images[0].url        # every run is kept in panel.results
```

More in [exploring.ipynb](exploring.ipynb) (several jobs at once, results side by side and saved
with their parameters) and [client.ipynb](client.ipynb) (the async client without widgets).
"""
    ),
]

EXPLORING: list[Cell] = [
    md(
        """
# Exploring parameters from cells

Several jobs at once with `asyncio.gather`: the same prompt and seed over a few guidance
values, then over a few LoRA scales, shown side by side and saved with their parameters. (A
dedicated sweep feature will follow; this is what the client and the images helpers allow today.)
"""
    ),
    KEY_HELP,
    ASK_FOR_KEY,
    CLIENT_SETUP,
    code(
        """
import asyncio
import tempfile
from html import escape
from pathlib import Path

import ipywidgets as widgets

from fluxwidget.images import save_image, thumbnail

PROMPT = (
    "Extreme close-up of a single tiger eye, direct frontal view. Detailed iris and pupil. "
    'The word "FLUX" is painted over it in big, white brush strokes.'
)
BASE = dict(prompt=PROMPT, image_size="square", num_inference_steps=20, seed=1234)  # shared

# Saved images go to notebooks/outputs/ (ignored by git) when it can be written, else a temp dir.
OUT = Path("outputs")
try:
    OUT.mkdir(exist_ok=True)
except OSError:
    OUT = Path(tempfile.mkdtemp(prefix="fluxwidget-"))
print("Saving to", OUT.resolve())
"""
    ),
    code(
        """
from fluxwidget import FluxLoraInput


async def run_side_by_side(label: str, values: list, inputs: list[FluxLoraInput]):
    \"\"\"Run every input at once; show the first image of each with its value; save them all.\"\"\"
    results = await asyncio.gather(*(client.generate(request) for request in inputs))
    tiles = []
    for value, request, result in zip(values, inputs, results):
        for index, image in enumerate(result.images):
            data = await client.download(image)
            suffix = ".png" if image.content_type == "image/png" else ".jpg"
            path = OUT / f"{label}-{value}-seed{result.seed}-{index}{suffix}"
            used = {"input": request.to_payload(), "seed": result.seed, "timings": result.timings}
            save_image(data, path, used)
            if index == 0:
                text = f"<b>{escape(label)} = {escape(str(value))}</b>"
                caption = widgets.HTML(f"{text}<br><small>{escape(path.name)}</small>")
                picture = widgets.Image(value=thumbnail(data), format="jpeg")
                tiles.append(widgets.VBox([picture, caption]))
    columns = "repeat(auto-fill, minmax(180px, 1fr))"
    return widgets.GridBox(tiles, layout=widgets.Layout(grid_template_columns=columns))
"""
    ),
    md(
        """
## Guidance scale

Higher guidance follows the prompt more literally; too high and images get harsh. Four jobs are
submitted at once and run side by side (the client limits how many requests are in flight).
"""
    ),
    code(
        """
guidance_values = [2.0, 3.5, 5.0, 8.0]
inputs = [FluxLoraInput(**BASE, guidance_scale=g) for g in guidance_values]
await run_side_by_side("guidance_scale", guidance_values, inputs)
"""
    ),
    md(
        """
### The same, in the panel's image grid

`panel.generate(**params)` sets the controls and starts a job at once, so `asyncio.gather` over
it runs the jobs side by side: each gets its own status row, and the images land in the panel's
grid with a caption, full-size view, **Save** (with metadata) and a history entry that restores
its parameters.
"""
    ),
    code(
        """
from fluxwidget import FluxPanel

panel = FluxPanel(client=client)
panel.set(**BASE)
panel
"""
    ),
    code(
        """
outputs = await asyncio.gather(*(panel.generate(guidance_scale=g) for g in guidance_values))
[(run.params.guidance_scale, run.output.seed) for run in panel.runs]
"""
    ),
    md(
        """
## LoRA scale

A LoRA's `scale` sets how strongly it applies. On fal, set `FLUXWIDGET_DEMO_LORA` to the URL of a
FLUX LoRA (`.safetensors`) before starting Jupyter; on the emulator any path works, and the
placeholder shows the LoRA and its scale.
"""
    ),
    code(
        """
from fluxwidget import LoraWeight

LORA_PATH = os.environ.get("FLUXWIDGET_DEMO_LORA", "")  # e.g. a .safetensors URL
if not LORA_PATH and not USING_FAL:
    LORA_PATH = "https://example.com/loras/watercolor.safetensors"  # the emulator accepts any

if LORA_PATH:
    scales = [0.4, 0.8, 1.2]
    inputs = [FluxLoraInput(**BASE, loras=[LoraWeight(path=LORA_PATH, scale=s)]) for s in scales]
    display(await run_side_by_side("lora_scale", scales, inputs))
else:
    print("Set FLUXWIDGET_DEMO_LORA to a LoRA URL to run this sweep on fal.")
"""
    ),
    md(
        """
## What was saved

Each image carries its parameters twice: inside the file (a PNG text chunk or a JPEG comment) and
in a JSON sidecar beside it, so any image can be made again.
"""
    ),
    code(
        """
import json

saved = sorted(OUT.glob("*.json"))
print(len(saved), "images with parameters in", OUT)
print(json.dumps(json.loads(saved[0].read_text()), indent=2)[:600])
"""
    ),
    code(
        """
await client.aclose()
"""
    ),
]

CLIENT: list[Cell] = [
    md(
        """
# The async client

`FluxClient` speaks fal's queue protocol for `fal-ai/flux-lora`: submit, status updates, result,
cancel. In a notebook, `await` it at the top level of a cell; the kernel stays responsive.
"""
    ),
    KEY_HELP,
    ASK_FOR_KEY,
    CLIENT_SETUP,
    md(
        """
## One call: `generate`

`generate` submits, waits and returns the result. It takes keyword arguments or a
`FluxLoraInput`; bad input is refused before anything is sent, with the field, the value and what
is allowed.
"""
    ),
    code(
        """
import time

import ipywidgets as widgets

from fluxwidget.images import thumbnail

t0 = time.perf_counter()
result = await client.generate(
    prompt="a lighthouse on a cliff at dawn, oil painting",
    image_size="landscape_4_3",
    num_inference_steps=20,
    seed=7,
)
image = result.images[0]
print(f"{image.width}x{image.height} {image.content_type}, seed {result.seed}, "
      f"{time.perf_counter() - t0:.1f} s")
widgets.Image(value=thumbnail(await client.download(image)), format="jpeg")
"""
    ),
    md(
        """
## Custom image sizes

`image_size` is one of six presets (`square_hd`, `square`, `portrait_4_3`, `portrait_16_9`,
`landscape_4_3`, `landscape_16_9`) or an explicit width and height.
"""
    ),
    code(
        """
from fluxwidget import FluxLoraInput
from fluxwidget.schema import ImageSize, InputError, validate_input

request = FluxLoraInput(
    prompt="a paper crane, studio light",
    image_size=ImageSize(width=768, height=384),
    num_inference_steps=12,
)
wide = await client.generate(request)
print([(im.width, im.height) for im in wide.images])

try:  # the seed document's "square pro" is not a preset
    validate_input(prompt="a paper crane", image_size="square pro")
except InputError as error:
    print("Refused before sending:", error)
"""
    ),
    md(
        """
## Several jobs at once

Coroutines run concurrently with `asyncio.gather`; one client caps how many requests are in
flight (`max_concurrency`).
"""
    ),
    code(
        """
import asyncio

prompts = ["a red fox in snow", "a red fox in rain", "a red fox in fog"]
t0 = time.perf_counter()
foxes = await asyncio.gather(
    *(client.generate(prompt=p, image_size="square", num_inference_steps=12) for p in prompts)
)
print(f"{len(foxes)} results in {time.perf_counter() - t0:.1f} s:", [r.seed for r in foxes])
"""
    ),
    md(
        """
## Status updates

`submit` returns a handle at once; `handle.updates()` yields typed updates — `Queued` (with the
queue position), `InProgress` (with the logs so far) and finally `Completed` — from fal's status
stream, falling back to polling if the stream fails. `handle.result()` then fetches the output.
"""
    ),
    code(
        """
from fluxwidget.client.status import describe

handle = await client.submit(prompt="a glass teapot, macro", num_inference_steps=16)
print("request id:", handle.request_id)
t0 = time.perf_counter()
async for update in handle.updates():
    print(f"{type(update).__name__:<11}", describe(update, time.perf_counter() - t0))
teapot = await handle.result()
print("done, seed", teapot.seed)
"""
    ),
    md(
        """
## Cancel

`handle.cancel()` asks fal to cancel: a queued job is removed, a running one is stopped if the
model allows it. The reply says what happened (`CANCELLATION_REQUESTED` or
`ALREADY_COMPLETED`); `result()` of a cancelled job raises `fluxwidget.errors.JobCancelledError`.
"""
    ),
    code(
        """
from fluxwidget.errors import FalError, JobCancelledError

slow = await client.submit(prompt="a very slow render", num_inference_steps=50)
updates = slow.updates()
print("first update:", type(await anext(updates)).__name__)  # the job is known to the queue
await updates.aclose()
print("cancel:", await slow.cancel())
try:
    await slow.result()
    print("it had already finished")
except JobCancelledError as error:
    print("cancelled:", error)
except FalError as error:  # on fal a cancelled job may also end with an error reply
    print(type(error).__name__, error)
"""
    ),
    md(
        """
## Recovering a request by its id

A request id is all that is needed to come back to a job — after a kernel restart, or from
another process. Keep the id (fluxwidget's CLI journals them to disk) and rebuild a handle:
"""
    ),
    code(
        """
request_id = handle.request_id  # from the status-updates example above
recovered = client.handle(request_id)
again = await recovered.result()
print(request_id, "->", again.images[0].url[:80])
"""
    ),
    md(
        """
## Through a Bearer proxy

Some services resell fal's queue behind their own host and token, with
`Authorization: Bearer <token>` instead of fal's `Key`. Point the client at the proxy:

```python
proxy = FluxClient(api_key="<token>", base_url="https://proxy.example", auth_scheme="Bearer")
```

or set `FLUXWIDGET_BASE_URL` and `FLUXWIDGET_AUTH_SCHEME=Bearer`. When the proxy hands back fal's
own status URLs, the client keeps talking to the proxy. The emulator accepts both schemes, so here
is the same call against it:
"""
    ),
    code(
        """
from fluxwidget import FluxClient
from fluxwidget.emulator import shared_emulator

proxy_emu = shared_emulator()
proxy = FluxClient(api_key=proxy_emu.api_key, base_url=proxy_emu.url, auth_scheme="Bearer")
print(proxy.config)
via_proxy = await proxy.generate(prompt="a tiger eye", num_inference_steps=8)
print(via_proxy.images[0].width, via_proxy.images[0].height)
await proxy.aclose()
"""
    ),
    code(
        """
await client.aclose()
"""
    ),
]

NOTEBOOKS: dict[str, list[Cell]] = {
    "quickstart": QUICKSTART,
    "exploring": EXPLORING,
    "client": CLIENT,
}


def build(name: str, cells: list[Cell]) -> nbformat.NotebookNode:
    nb_cells = []
    for index, (kind, source) in enumerate(cells):
        cell = new_markdown_cell(source) if kind == "md" else new_code_cell(source)
        cell["id"] = f"{name}-{index:02d}"
        nb_cells.append(cell)
    nb = new_notebook(cells=nb_cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / f"{name}.ipynb"
        text = render(build(name, cells))
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path.name)
        if not args.check:
            path.write_text(text)
    if args.check and stale:
        print("out of date with build_notebooks.py:", ", ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print("wrote", ", ".join(stale) if stale else "nothing (all up to date)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
