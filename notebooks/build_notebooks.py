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

Every image is saved as it arrives, with its parameters embedded, in a run folder under
`fluxwidget-runs/` beside the notebook. More in [exploring.ipynb](exploring.ipynb) (one
parameter at a time, side by side), [sweeps.ipynb](sweeps.ipynb) (X/Y grids of any parameters,
the cost first, resuming) and [client.ipynb](client.ipynb) (the async client without widgets).
"""
    ),
]

EXPLORING: list[Cell] = [
    md(
        """
# Exploring parameters from cells

One parameter at a time: the same prompt and seed over a few guidance values, a few seeds, a few
LoRA scales, each shown as a row of labelled images. `sweep()` runs the jobs at once (at most 8
in flight), saves every image as it arrives with its parameters embedded, and keeps a run folder
per sweep. [sweeps.ipynb](sweeps.ipynb) goes further: X × Y grids, Prompt S/R, the cost before
running, resuming.
"""
    ),
    KEY_HELP,
    ASK_FOR_KEY,
    CLIENT_SETUP,
    code(
        """
from pathlib import Path

from fluxwidget import sweep

PROMPT = (
    "Extreme close-up of a single tiger eye, direct frontal view. Detailed iris and pupil. "
    'The word "FLUX" is painted over it in big, white brush strokes.'
)
BASE = dict(prompt=PROMPT, image_size="square", num_inference_steps=12)  # shared by all jobs
SEED = 1234  # one seed for every image, so the swept parameter is the only difference

# Each sweep gets a run folder under fluxwidget-runs/ beside this notebook (ignored by git).
RUNS = Path("fluxwidget-runs")
"""
    ),
    md(
        """
## Guidance scale

Higher guidance follows the prompt more literally; too high and images get harsh. The four jobs
are submitted at once; the row fills in as the images arrive.
"""
    ),
    code(
        """
guidance = await sweep(
    BASE, x="guidance_scale=2,3.5,5,8", seed=SEED, client=client, out=RUNS / "exploring-guidance"
)
guidance.progress().describe()
"""
    ),
    md(
        """
## Seeds

A seed is a parameter like any other: `seed=1-4` (range syntax: 1, 2, 3, 4) shows four
variations of the same input. Click a cell for its full parameters and request id.
"""
    ),
    code(
        """
seeds = await sweep(BASE, x="seed=1-4", guidance_scale=3.5, client=client,
                    out=RUNS / "exploring-seeds")
[(row["seed"], row["state"]) for row in seeds.to_records()]
"""
    ),
    md(
        """
## LoRA scale

A LoRA's `scale` sets how strongly it applies; `loras[0].scale` sweeps the first LoRA of the
base input. On fal, set `FLUXWIDGET_DEMO_LORA` to the URL of a FLUX LoRA (`.safetensors`) before
starting Jupyter; on the emulator any path works, and the placeholder shows the LoRA and its
scale.
"""
    ),
    code(
        """
LORA_PATH = os.environ.get("FLUXWIDGET_DEMO_LORA", "")  # e.g. a .safetensors URL
if not LORA_PATH and not USING_FAL:
    LORA_PATH = "https://example.com/loras/watercolor.safetensors"  # the emulator accepts any

if LORA_PATH:
    lora = await sweep(
        BASE, x="loras[0].scale=0.4-1.2 [3]", loras=[{"path": LORA_PATH, "scale": 1.0}],
        seed=SEED, client=client, out=RUNS / "exploring-lora",
    )
    print(lora.progress().describe())
else:
    print("Set FLUXWIDGET_DEMO_LORA to a LoRA URL to run this sweep on fal.")
"""
    ),
    md(
        """
## One job in the panel

The panel runs on the same job pipeline: its images are saved the same way. Continue from any
image: `panel.set(...)` takes the parameters a sweep recorded.
"""
    ),
    code(
        """
from fluxwidget import FluxPanel

panel = FluxPanel(client=client)
best = guidance.to_records()[1]  # guidance 3.5
panel.set(**best["input"])
panel
"""
    ),
    code(
        """
await panel.generate()
panel.last_result.seed, panel.last_result.images[0].width
"""
    ),
    md(
        """
## What was saved

Nothing needs saving by hand. Each run folder holds every image (named `<cell>-<index>.jpg`,
never overwritten), `manifest.json` (one row per job: full input, seed actually used, request id,
timings, NSFW flag, files), `journal.jsonl` (every request id, written before anything waits on
it) and the exported `grid.jpg` and `report.html`. Every image also carries its record inside the
file (a JPEG comment or PNG text chunk), so one image alone is enough to make it again:
"""
    ),
    code(
        """
import json

from fluxwidget.images import read_metadata

print(guidance.folder)
print(sorted(path.name for path in guidance.folder.iterdir()))

manifest = json.loads((guidance.folder / "manifest.json").read_text())
print(manifest["kind"], "with", len(manifest["jobs"]), "jobs:",
      [(job["axes"], job["seed"], job["state"]) for job in manifest["jobs"]])

first = guidance.folder / manifest["jobs"][0]["images"][0]["file"]
record = read_metadata(first)
print(json.dumps({k: record[k] for k in ("job_id", "request_id", "seed", "axes", "input")},
                 indent=1)[:700])
"""
    ),
    code(
        """
await client.aclose()
"""
    ),
]

SWEEPS: list[Cell] = [
    md(
        """
# Sweeps: X/Y grids, Prompt S/R, resuming

`sweep()` runs one input over up to three axes (X columns, Y rows, Z one grid per value), as
Automatic1111's X/Y/Z plot does, but on fal's queue: every cell is validated before anything is
sent, the cost is estimated first, at most 8 cells are in flight, every image is saved as it
arrives, and a sweep that stopped midway (Ctrl-C, a crash, a kernel restart) resumes without
paying twice.
"""
    ),
    KEY_HELP,
    ASK_FOR_KEY,
    CLIENT_SETUP,
    code(
        """
from pathlib import Path

from fluxwidget import sweep

# Every sweep below writes a run folder under fluxwidget-runs/ beside this notebook (ignored by
# git). Without out=..., sweep() makes a new dated folder under $FLUXWIDGET_RUNS or
# ./fluxwidget-runs.
RUNS = Path("fluxwidget-runs")

LORA_PATH = os.environ.get("FLUXWIDGET_DEMO_LORA", "")  # on fal: a FLUX LoRA .safetensors URL
if not LORA_PATH and not USING_FAL:
    LORA_PATH = "https://example.com/loras/watercolor.safetensors"  # the emulator accepts any

BASE = dict(prompt="a red fox in fresh snow, watercolor", image_size="square",
            num_inference_steps=12)
if LORA_PATH:
    BASE["loras"] = [{"path": LORA_PATH, "scale": 1.0}]
    X = "loras[0].scale=0.4-1.2 [3]"  # three evenly spaced scales: 0.4, 0.8, 1.2
else:  # on fal without a LoRA: sweep the step count instead
    X = "num_inference_steps=8,16,28"
Y = "guidance_scale=2,3.5,5"
"""
    ),
    md(
        """
## The cost before running

An axis is `field=values`: a list (`2,3.5,5`), a range (`1-5`, `1-5 (+2)`) or a count of evenly
spaced values (`0.4-1.2 [3]`). `plan_sweep` expands the axes into cells and validates every one
(nothing is sent); `estimate_cost` prices them as fal bills: images × megapixels (rounded up per
image) × the price per megapixel. `sweep()` does the same before it starts, with fal's own price
when a key is set, and waits for `confirm=True` above $1.
"""
    ),
    code(
        """
from fluxwidget.sweeps import estimate_cost, plan_sweep

plan = plan_sweep(BASE, x=X, y=Y)
print(len(plan.cells), "cells, for example:", plan.cells[4].axis_values)
print(estimate_cost(plan.inputs).describe())
"""
    ),
    md(
        """
A mistake in any cell is caught before a single request, named by its axis values:
"""
    ),
    code(
        """
from fluxwidget import SweepError

try:
    plan_sweep(BASE, x=X, y="guidance_scale=2,40")
except SweepError as error:
    print(error)
"""
    ),
    md(
        """
## A 3 × 3 sweep, live

`await sweep(...)` shows the grid at once and fills each cell as its image arrives (state,
queue position and step while it runs). Row and column labels are the axis values; click a cell
for its full parameters, seed, request id and timings, and **Open in panel** to continue from it.
The seed is fixed (`seed=7`) so the cells differ only by the swept values (`seed_mode="per_cell"`
draws one per cell).
"""
    ),
    code(
        """
fox = await sweep(BASE, x=X, y=Y, seed=7, client=client, out=RUNS / "fox-grid")
"""
    ),
    code(
        """
print(fox.progress().describe())
print("estimated:", fox.estimate.describe())
print("billed units reported by the server:", fox.runner.billed_units())
"""
    ),
    md(
        """
## The exported grid and report

When a sweep ends, a labelled grid image (`grid.jpg`, one per Z value) and a self-contained HTML
report (every cell's thumbnail with its parameters) are written into its run folder, ready to
share.
"""
    ),
    code(
        """
from IPython.display import FileLink, Image, display

from fluxwidget.images import thumbnail

grid_file = next(path for path in fox.exported if path.suffix == ".jpg")
report_file = next(path for path in fox.exported if path.suffix == ".html")
# a preview keeps the notebook light; the full grid.jpg is in the run folder
display(Image(data=thumbnail(grid_file.read_bytes(), 360, 50), width=360))
display(FileLink(str(grid_file), result_html_prefix="Full grid: "))
FileLink(str(report_file), result_html_prefix="HTML report: ")
"""
    ),
    md(
        """
## The sweep as a table

`to_records()` gives one dict per cell (axis values, state, seed, request id, files, timings,
billed units, full input); `to_pandas()` makes it a DataFrame when pandas is installed.
"""
    ),
    code(
        """
COLUMNS = ["cell", *(f"axis:{axis.field}" for axis in fox.plan.axes if axis), "seed", "state",
           "billable_units", "files"]
try:
    table = fox.to_pandas()[COLUMNS]
except ImportError:  # pandas is optional: the same rows as dicts
    table = [{column: row[column] for column in COLUMNS} for row in fox.to_records()]
table
"""
    ),
    md(
        """
## Prompt S/R

The Prompt S/R axis (`prompt_sr`) searches the prompt for its first value and replaces it with
each value in turn — here one row of three animals. With a Y axis as well it makes a grid of
prompts × any parameter.
"""
    ),
    code(
        """
animals = await sweep(
    "a portrait of a tiger in fresh snow, watercolor",
    x="prompt_sr=tiger,lion,snow owl",
    image_size="square",
    num_inference_steps=12,
    seed=7,
    client=client,
    out=RUNS / "animals",
)
[row["input"]["prompt"] for row in animals.to_records()]
"""
    ),
    md(
        """
## Resuming after a kernel restart

A sweep's state lives in its run folder, not in the kernel. Run the same sweep on the same
folder again — after a kernel restart, a crash, Ctrl-C — and it resumes: done cells are skipped,
cells that were submitted are collected by their request id, only cells never sent are
submitted. Nothing is paid twice. (A *different* sweep on the same folder is refused, so two
definitions never mix.)

Here the sweep above is run again on its folder, as it would be after a restart: it finds every
cell done and submits nothing.
"""
    ),
    code(
        """
import json


def submitted(folder):
    \"\"\"The request ids in a run folder's journal (one per submit the server accepted).\"\"\"
    events = [json.loads(line) for line in (folder / "journal.jsonl").read_text().splitlines()]
    return [event["request_id"] for event in events if event["event"] == "submitted"]

before = submitted(fox.folder)
again = await sweep(BASE, x=X, y=Y, seed=7, client=client, out=RUNS / "fox-grid")
after = submitted(again.folder)
print(again.progress().describe())
print(f"submits: {len(before)} before, {len(after)} after -> {len(after) - len(before)} new")
assert after == before and again.progress().done == len(plan.cells)
"""
    ),
    md(
        """
## The run folder, and the same sweep from a shell

A run folder holds:

- `manifest.json`: the sweep's definition and one row per cell (axis values, full input,
  request id, seed used, timings, state, files, NSFW flag, billed units), rewritten atomically as
  cells change;
- `journal.jsonl`: every job event, appended and fsynced — each request id is on disk before
  anything waits on it;
- the images, `<cell>-<index>.jpg`, each with its record embedded (read it back with
  `fluxwidget.images.read_metadata`);
- `grid.jpg` and `report.html`.

The shell runs the same sweeps on the same folders: `python -m fluxwidget sweep "prompt" --axis
"loras[0].scale=0.4-1.2 [3]" --axis guidance_scale=2,3.5,5 --lora PATH:1.0 --seed 7 --out DIR`
(with a progress bar; `--dry-run` prints the cells and the cost; the same command again resumes),
and `python -m fluxwidget recover DIR` collects any submitted cell whose images are not on disk.
Pointed at the folder of the sweep above, the shell finds nothing left to do:
"""
    ),
    code(
        """
import subprocess
import sys

shell_sweep = [
    sys.executable, "-m", "fluxwidget", "sweep", BASE["prompt"], "--image-size", "square",
    "--steps", str(BASE["num_inference_steps"]), "--axis", X, "--axis", Y, "--seed", "7",
    "--quiet", "--out", str(fox.folder),
]
if LORA_PATH:
    shell_sweep += ["--lora", f"{LORA_PATH}:1.0"]
if not USING_FAL:
    shell_sweep.append("--emulator")  # the shell's own emulator; the cells are all done anyway
for command in (shell_sweep, [sys.executable, "-m", "fluxwidget", "recover", str(fox.folder)]):
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    print("$ python", " ".join(command[1:4]), "...  -> exit", done.returncode)
    print(done.stderr.strip(), done.stdout.strip(), sep="\\n")
print("submits after the shell:", len(submitted(fox.folder)))
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

try:  # a typo such as "square pro" is not a preset: refused, with the list
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
    "sweeps": SWEEPS,
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
