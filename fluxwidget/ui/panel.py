"""FluxPanel: the notebook playground for fal-ai/flux-lora, composed of the ui parts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..client.pricing import UnitPrice, fetch_unit_price
from ..client.protocols import JobClient
from ..connect import ClientMode, choose_client
from ..schema import (
    FieldProblem,
    FluxLoraInput,
    FluxLoraOutput,
    ImageToImageInput,
    InpaintingInput,
    InputError,
    model_for_fields,
    validate_input,
)
from ..store.runs import Run, default_runs_root
from ..sweeps.cost import DEFAULT_PRICE, estimate_cost
from ._widgets import built_quietly, close_tree, error_html, esc, lighten, muted, shared_layout
from .code_view import CodeView
from .codegen import Target
from .controls import IMAGE_FIELDS, INPUT_MODES, ParameterForm, mode_of
from .fallback import FallbackItem, LiveOutput, fallback_html
from .gallery import GalleryImage, ImageGallery, caption
from .history import PAST_RUNS, HistoryView, past_runs, restore_values
from .history import summary as summary_line
from .image_input import ImagePicker, is_local_path, save_input
from .jobs import Job
from .keys import KeyBox, banner_html
from .live_notice import mark_snapshot_root
from .mask_painter import MaskPainter, mask_to_png
from .records import RunRecord
from .status import error_text
from .sweep_form import SweepForm
from .sweep_view import register_opener
from .tabs import Tabs
from .tasks import TaskSet

__all__ = ["FluxPanel"]

FORM_COLUMN = "424px"
"""The form's column; the results take the rest (and go below it when the cell is narrow)."""
MAX_JOB_ROWS = 4
"""Job rows shown above the results (finished ones beyond this are dropped, newest kept)."""
TAB_TITLES = ("Generate", "Sweep", "History")
UPLOADING = "Uploading input files…"
"""A job row's line while its local input image (and mask) are uploaded to fal."""


_PLACEHOLDER_IMAGE = "https://example.com/placeholder.png"
"""Stands in for a required image while `set()` checks only the fields it was given."""


def _fields(model: FluxLoraInput) -> dict[str, Any]:
    return {name: getattr(model, name) for name in type(model).model_fields}


def _more_specific(a: type[FluxLoraInput], b: type[FluxLoraInput]) -> type[FluxLoraInput]:
    """The family member that is the other's subclass (inpainting ⊃ image → image ⊃ text)."""
    return a if issubclass(a, b) else b


class FluxPanel:
    """Every flux-lora parameter, live job status, an image grid and a history, in one cell.

    ``FluxPanel()`` runs on fal when ``FAL_KEY`` (or ``FAL_KEY_ID`` + ``FAL_KEY_SECRET``) is
    set, else on the built-in emulator; ``FluxPanel(api_key=...)`` or ``FluxPanel(client=...)``
    choose explicitly. Display it as the last expression of a cell (or ``panel.widget``).
    """

    def __init__(
        self,
        client: JobClient | None = None,
        *,
        api_key: str | None = None,
        runs_root: str | Path | None = None,
    ) -> None:
        """`runs_root`: the runs folder the history is read from (default ``$FLUXWIDGET_RUNS``
        or ``./fluxwidget-runs``)."""
        self.runs_root = Path(runs_root) if runs_root is not None else default_runs_root()
        connection = choose_client(client, api_key=api_key)
        self._client: JobClient = connection.client
        self._mode: ClientMode = connection.mode
        self._tasks = TaskSet(self._report, thread_cleanup=self._close_client_connections)
        self._jobs: list[Job] = []
        self._runs: list[RunRecord] = []
        self._records_by_run: dict[str, RunRecord] = {}
        self._count = 0

        with built_quietly():  # only the models left after lighten() are sent
            self.banner = widgets.HTML()
            self.keys = KeyBox(self.use_key)
            self.form = ParameterForm(store=self._store_upload)
            self.form.mask_painter.on_change(self._mask_painted)
            self._input_tiles: dict[int, list[tuple[str, GalleryImage]]] = {}
            self.generate_button = widgets.Button(
                description="Generate",
                icon="play",
                button_style="primary",
                tooltip="Submit a job with these parameters (several may run at once)",
                layout=shared_layout(width="120px"),
            )
            self.form_message = widgets.HTML()
            self.price_label = widgets.HTML(layout=widgets.Layout(margin="0 6px", display="none"))
            """The estimated price of Generate with the form's values (hidden when invalid)."""
            self.unit_price: UnitPrice = DEFAULT_PRICE
            """The unit price estimates use: the server's once fetched, else the documented one."""
            self.code = CodeView()
            self.jobs_box = widgets.VBox(layout=shared_layout(width="100%"))
            self.gallery = ImageGallery()
            self.gallery.on_full(self._full_image)
            self.gallery.on_restore(self._restore_run)
            self._shown: dict[str, tuple[RunRecord, int]] = {}
            self.history = HistoryView(self.restore, self._restore_params)
            self.sweep_tab = widgets.VBox()
            """The Sweep section: an empty container the sweep form and grid are put into."""
            self.open_folder_button = widgets.Button(
                description="Open folder",
                icon="folder-open",
                tooltip="Where this panel's images are saved",
                layout=shared_layout(width="120px"),
            )
            self.open_folder_button.on_click(lambda _button: self._open_folder())
            self.folder_message = widgets.HTML()
            actions = widgets.HBox(
                [self.generate_button, self.price_label, self.code.toggle, self.form_message],
                layout=shared_layout(align_items="center", flex_flow="row wrap"),
            )
            left = widgets.VBox(
                [self.form.widget, actions, self.code.box],
                layout=widgets.Layout(flex="0 0 auto", width=FORM_COLUMN),
            )
            right = widgets.VBox(
                [self.jobs_box, self.gallery],
                layout=widgets.Layout(flex="1 1 300px", min_width="300px", margin="0 0 0 8px"),
            )
            self.generate_page = widgets.HBox(
                [left, right], layout=widgets.Layout(flex_flow="row wrap", align_items="flex-start")
            )
            history_page = widgets.VBox(
                [
                    widgets.HBox([self.open_folder_button, self.folder_message]),
                    self.history.box,
                ]
            )
            self.tabs = Tabs([self.generate_page, self.sweep_tab, history_page], TAB_TITLES)
            self.widget = widgets.VBox([self.banner, self.keys.box, self.tabs])
            lighten(self.widget)
            # without a kernel: one "not live" notice, no disconnected icons (live_notice.py)
            self.notice = mark_snapshot_root(self.widget, live_only=[self.banner, self.keys.box])

        self.generate_button.on_click(lambda _button: self._generate_clicked())
        self.form.reuse_seed.on_click(lambda _button: self.reuse_last_seed())
        self.runs_folder: Run | None = None
        """This panel's run folder (made at its first job): every image, the manifest."""
        self._folder_lock = asyncio.Lock()
        self.closed = False
        self.sweep_form: SweepForm | None = None
        """The Sweep tab's form, built when the tab is first opened (a light empty panel)."""
        self.tabs.observe(self._tab_selected, "selected_index")
        register_opener(self)  # "Open in panel" of a sweep grid lands in the newest panel
        self.form.on_change(self._form_changed)
        self.code.toggle.observe(lambda _change: self._refresh_code(), "value")
        self._show_banner()
        self._form_changed(self.form.problems)
        self._start_history()
        self._start_price()
        self._live = LiveOutput(
            lambda: None if self.closed else self.widget, self.static_html, lambda: repr(self)
        )

    # --- the Python API ---------------------------------------------------------------------

    @property
    def client(self) -> JobClient:
        """The client jobs are submitted with."""
        return self._client

    @property
    def mode(self) -> str:
        """``"emulator"``, ``"fal"`` (made from a key) or ``"client"`` (given)."""
        return self._mode

    @property
    def params(self) -> FluxLoraInput:
        """The form's values as the input model of the chosen mode (`FluxLoraInput`,
        `ImageToImageInput` or `InpaintingInput`); raises InputError when the form is invalid."""
        return self.form.params()

    @property
    def input_mode(self) -> str:
        """``"text-to-image"``, ``"image-to-image"`` or ``"inpainting"``: the mode switch of the
        Generate tab (settable)."""
        return str(self.form.mode.value)

    @input_mode.setter
    def input_mode(self, mode: str) -> None:
        if mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {', '.join(INPUT_MODES)}, not {mode!r}")
        self.form.mode.value = mode

    @property
    def input_model(self) -> type[FluxLoraInput]:
        """The input model of the chosen mode (it names the endpoint: ``.endpoint_id``)."""
        return self.form.model

    @property
    def mask_painter(self) -> MaskPainter:
        """The inpainting mask painter (its mask is written to ``inputs/`` as ``mask_url``)."""
        return self.form.mask_painter

    def set(self, input: FluxLoraInput | Mapping[str, Any] | None = None, /, **params: Any) -> None:
        """Put parameters into the controls, e.g. ``panel.set(num_images=2, seed=7)``.

        Only the given fields change. An ``image_url`` (or ``strength``) switches to image →
        image, a ``mask_url`` to inpainting; an input model switches to its own mode. Images
        are URLs, data: URIs or local files (uploaded to fal when a job runs). Invalid values
        raise InputError and change nothing.
        """
        values: dict[str, Any] = {}
        base: type[FluxLoraInput] = self.form.model
        if isinstance(input, FluxLoraInput):
            values.update(_fields(input))
            base = type(input)
        elif input is not None:
            values.update(input)
        values.update(params)
        target = _more_specific(base, model_for_fields(values))
        stand_ins = {"prompt": "placeholder"}
        if issubclass(target, ImageToImageInput):
            stand_ins["image_url"] = _PLACEHOLDER_IMAGE
        if issubclass(target, InpaintingInput):
            stand_ins["mask_url"] = _PLACEHOLDER_IMAGE
        checked = validate_input({**stand_ins, **values}, model=target)
        self.form.apply({name: getattr(checked, name) for name in values}, mode=mode_of(target))

    @property
    def runs(self) -> list[RunRecord]:
        """Finished runs in the order they finished: input, output and image bytes."""
        return list(self._runs)

    @property
    def results(self) -> list[FluxLoraOutput]:
        """fal's outputs of the finished runs, in the order they finished."""
        return [run.output for run in self._runs]

    @property
    def last_result(self) -> FluxLoraOutput | None:
        """The output of the run that finished last, or None."""
        return self._runs[-1].output if self._runs else None

    @property
    def jobs(self) -> list[Job]:
        """Every job started in this panel, oldest first."""
        return list(self._jobs)

    @property
    def tasks(self) -> frozenset[asyncio.Task[Any]]:
        """The background tasks still running (gather them to wait)."""
        return frozenset(self._tasks.tasks)

    async def generate(self, **params: Any) -> FluxLoraOutput:
        """Run the form's parameters (after ``set(**params)``) as a job; returns fal's output.

        Interrupting the awaiting cell does not stop the job; its Cancel button does.
        """
        if params:
            self.set(**params)
        job = self._start(self.params)
        task = self._tasks.spawn(self._run(job), on_error=lambda exc: self._job_failed(job, exc))
        if task is None:  # pragma: no cover - a coroutine always has a running loop
            raise RuntimeError("generate() needs a running event loop")
        record = await asyncio.shield(task)
        return record.output

    async def wait(self) -> None:
        """Wait for every running job of this panel."""
        await self._tasks.wait()

    def use_key(self, key: str) -> None:
        """Switch to a client with this key (kept by the client only, never in a widget).

        On the emulator the new client talks to fal; otherwise it is a copy of the current client
        (same host, auth scheme, endpoint and options) with the new key.
        """
        with_options = getattr(self._client, "with_options", None)
        if self._mode == "emulator":
            connection = choose_client(api_key=key, emulator=False)
            self._client, self._mode = connection.client, connection.mode
        elif with_options is not None:
            self._client = with_options(api_key=key)
        else:  # a client of another kind: a FluxClient to the same place
            config = self._client.config
            self._client = choose_client(
                api_key=key,
                emulator=False,
                base_url=config.base_url,
                auth_scheme=config.auth_scheme,
                endpoint=config.endpoint,
            ).client
        self._show_banner()
        self._refresh_code()
        self.unit_price = DEFAULT_PRICE
        self._refresh_price()
        self._start_price()

    def reuse_last_seed(self) -> None:
        """Fix the seed to the one the last run used."""
        if self._runs and self._runs[-1].seed is not None:
            self.form.apply({"seed": self._runs[-1].seed})

    def restore_input(self, values: Mapping[str, Any]) -> None:
        """Put a full input (a job record's ``reuse_input()``, seed included) into the form and
        show the Generate tab ("Open in panel" of a sweep cell). Invalid input raises."""
        self.set(validate_input(dict(values)))
        self.tabs.selected_index = 0

    def restore(self, run: RunRecord) -> None:
        """Put a run's parameters (with the seed it used) back into the controls and show the
        Generate tab (Restore in the History tab or the gallery)."""
        self._restore_params(restore_values(run))

    def _restore_params(self, params: FluxLoraInput) -> None:
        self.form.apply(_fields(params), mode=mode_of(type(params)))
        self.tabs.selected_index = 0

    def _tab_selected(self, change: dict[str, Any]) -> None:
        if change["new"] != 1:
            return
        if self.sweep_form is None:
            self.sweep_form = SweepForm(
                lambda: self.params, lambda: self._client, opener=self.restore_input
            )
            self.sweep_tab.children = (self.sweep_form.widget,)
        else:
            self.sweep_form.refresh()  # the form's fields may have changed (LoRAs added)

    def close(self) -> None:
        """Cancel waiting tasks and close every widget of the panel."""
        self.closed = True
        self._live.cancel()
        self._tasks.cancel_all()
        for part in (self.form, self.code, self.gallery, self.history):
            part.close()
        for job in self._jobs:
            job.row.close()
        close_tree(self.widget)

    def __repr__(self) -> str:
        count = sum(len(run.images) for run in self._runs)
        state = " (closed)" if self.closed else ""
        return f"<FluxPanel{state}: {len(self._runs)} runs, {count} images, on {self._mode}>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if self.closed or getattr(self.widget, "_repr_mimebundle_", None) is None:
            return {"text/plain": "FluxPanel (closed)"}
        return self._live.bundle()

    def _ipython_display_(self) -> None:
        """Shown with a static fallback (GitHub, nbconvert) kept current as results arrive."""
        if self.closed:
            from IPython.display import display

            display({"text/plain": "FluxPanel (closed)"}, raw=True)  # type: ignore[no-untyped-call]
            return
        self._live.display()

    def static_html(self) -> str:
        """The panel as static HTML: the newest runs' thumbnails and parameters (escaped)."""
        items = [
            FallbackItem(
                summary_line(run),
                [image.thumbnail for image in run.images],
                [
                    caption(
                        run.number,
                        n,
                        len(run.images),
                        run.seed,
                        (i.width, i.height),
                        steps=run.params.num_inference_steps,
                        guidance=run.params.guidance_scale,
                    )
                    for n, i in enumerate(run.images)
                ],
            )
            for run in reversed(self._runs)
        ]
        title = "FluxPanel" + ("" if items else " — no results when this snapshot was taken")
        return fallback_html(title, items)

    # --- running ----------------------------------------------------------------------------

    def _generate_clicked(self) -> None:
        try:
            params = self.params
        except InputError as exc:
            self.form_message.value = error_html(error_text(exc))
            return
        job = self._start(params)
        self._tasks.spawn(self._run(job), on_error=lambda exc: self._job_failed(job, exc))

    def _start(self, params: FluxLoraInput) -> Job:
        self._count += 1
        with built_quietly():
            job = Job(self._count, self._client, params)
            lighten(job.row.box)
        self._input_tiles[job.number] = self._inputs_of(params)
        if any(is_local_path(str(getattr(params, name, "") or "")) for name in IMAGE_FIELDS):
            job.row.show(UPLOADING, "submitting")  # the pipeline uploads them before submitting
        self._jobs.append(job)
        shown = [job.row.box, *self.jobs_box.children]
        while len(shown) > MAX_JOB_ROWS:
            old = next(
                (j for j in reversed(self._jobs) if j.row.finished and j.row.box in shown[1:]),
                None,
            )
            if old is None:
                break
            shown.remove(old.row.box)
            old.row.close()
        self.jobs_box.children = tuple(shown)
        return job

    async def _run(self, job: Job) -> RunRecord:
        job.run_folder = await self._runs_folder()
        record = await job.run()
        self._add_record(record)
        return record

    async def _runs_folder(self) -> Run:
        """The panel's run folder, created off the event loop on the first Generate."""
        async with self._folder_lock:
            if self.runs_folder is None:
                self.runs_folder = await asyncio.to_thread(Run.create, self.runs_root, kind="panel")
        return self.runs_folder

    def _add_record(self, record: RunRecord) -> None:
        """Show a finished run: its thumbnails in the gallery, a line in the history."""
        self._runs.append(record)
        run_id = f"run-{record.number}-{record.request_id}"
        images = [
            GalleryImage(image.thumbnail, image.width, image.height, image.nsfw, path="memory")
            for image in record.images
        ]
        ids = self.gallery.add_run(
            run_id,
            str(record.number),
            images,
            seed=record.seed,
            steps=record.params.num_inference_steps,
            guidance=record.params.guidance_scale,
            summary=summary_line(record),
            restore=True,
            inputs=self._input_tiles.pop(record.number, ()),
        )
        for index, entry_id in enumerate(ids):
            self._shown[entry_id] = (record, index)
        self._records_by_run[run_id] = record
        self.history.add(record)
        self.form.reuse_seed.disabled = record.seed is None
        self._live.changed()

    def _inputs_of(self, params: FluxLoraInput) -> list[tuple[str, GalleryImage]]:
        """Thumbnails of a job's input image (and mask), shown beside its results."""
        tiles: list[tuple[str, GalleryImage]] = []
        for name, label in (("image_url", "input"), ("mask_url", "mask")):
            value = getattr(params, name, None)
            picker = self.form.pickers[name]
            image = picker.image
            if value and picker.value == value and image is not None:
                tiles.append((label, GalleryImage(image.thumbnail, image.width, image.height)))
        return tiles

    # --- input images: uploads from the browser, the painted mask ---------------------------

    def _store_upload(self, picker: ImagePicker, data: bytes, name: str) -> None:
        """An image uploaded in the browser: written into the run folder's ``inputs/`` (in the
        background), then its path goes into the field."""

        def failed(exc: BaseException) -> None:
            picker.show_message(f"{name}: {error_text(exc)}", error=True)

        self._tasks.spawn(self._save_upload(picker, data, name), on_error=failed)

    async def _save_upload(self, picker: ImagePicker, data: bytes, name: str) -> Path | None:
        folder = await self._runs_folder()
        try:
            path = await asyncio.to_thread(save_input, folder.path, data)
        except ValueError as exc:
            picker.show_message(f"{name} {exc}", error=True)
            return None
        picker.show_message("")
        if picker.value == str(path):
            picker.refresh()  # the same image again (after an error, say): check it anew
        else:
            picker.value = str(path)
        return path

    def _mask_painted(self, painter: MaskPainter) -> None:
        self._tasks.spawn(self._save_mask(painter, painter.version))

    async def _save_mask(self, painter: MaskPainter, version: int) -> Path | None:
        """Write the painted mask (the image's full size) to ``inputs/`` and make it the
        ``mask_url``; an older version than the painter's newest is dropped."""
        mask = self.form.pickers["mask_url"]
        if not painter.painted:
            if self.form.painted_mask is not None and mask.value == self.form.painted_mask:
                mask.value = ""
            return None
        snapshot = painter.snapshot()
        folder = await self._runs_folder()
        data = await asyncio.to_thread(mask_to_png, snapshot)
        path = await asyncio.to_thread(save_input, folder.path, data, prefix="mask-")
        if version != painter.version:
            return None  # painted again meanwhile: that newer write wins
        self.form.painted_mask = str(path)
        mask.value = str(path)
        return path

    def _full_image(self, entry_id: str) -> bytes | None:
        """The full image of a gallery entry (kept by the run record, or read from its file)."""
        found = self._shown.get(entry_id)
        if found is None:
            return None
        record, index = found
        image = record.images[index]
        path = getattr(image, "path", None)
        if path:
            return Path(path).read_bytes()
        return image.data or None

    def _restore_run(self, run_id: str) -> None:
        record = self._records_by_run.get(run_id)
        if record is not None:
            self.restore(record)

    def _start_history(self) -> None:
        """Read earlier runs in the background (in a kernel), or now (in a plain script)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.history.add_past(past_runs(self.runs_root, PAST_RUNS))
            return
        self._tasks.spawn(self.load_history())

    async def load_history(self, limit: int = PAST_RUNS) -> int:
        """Show earlier sessions' runs (the run folders under the runs folder, a sweep being
        one) in the History tab, one row each; returns how many. Runs when the panel is made;
        manifests are read in a thread, thumbnails when the browser asks for them."""
        runs = await asyncio.to_thread(past_runs, self.runs_root, limit)
        self.history.add_past(runs)
        return len(runs)

    def _open_folder(self) -> None:
        """Say where the images are saved (the runs folder), as a path and a file:// link."""
        path = self.runs_root.resolve()
        if not path.is_dir():
            self.folder_message.value = muted(f"{path} (nothing saved there yet)")
            return
        self.folder_message.value = (
            f'<a href="{esc(path.as_uri())}" target="_blank">{esc(str(path))}</a>'
        )

    async def _close_client_connections(self) -> None:
        """Close the client's connections on the current loop (a job thread's, ending)."""
        aclose = getattr(self._client, "aclose", None)
        if aclose is not None:
            await aclose()

    def _job_failed(self, job: Job, exc: BaseException) -> None:
        self._input_tiles.pop(job.number, None)
        if not job.reported:
            job.reported = True
            job.row.show(error_text(exc), "error")

    def _report(self, exc: BaseException) -> None:
        self.form_message.value = error_html(error_text(exc))

    # --- form, banner, code -----------------------------------------------------------------

    def _form_changed(self, problems: list[FieldProblem]) -> None:
        self.generate_button.disabled = bool(problems)
        if not problems:
            self.form_message.value = ""
        elif [p.field for p in problems] == ["prompt"] and not self.form.prompt.value.strip():
            self.form_message.value = muted("Type a prompt to generate.")
        else:
            count = len(problems)
            self.form_message.value = error_html(
                f"Fix {count} field{'s' if count > 1 else ''} above to generate."
            )
        self._refresh_code()
        self._refresh_price()

    # --- the price next to Generate ---------------------------------------------------------

    def _refresh_price(self) -> None:
        """``≈ $0.07 (2 × 1 MP)`` for the form's values at the known unit price; empty (and
        hidden) while the form is invalid."""
        try:
            params = self.params
        except InputError:
            self.price_label.value = ""
            self.price_label.layout.display = "none"
            return
        self.price_label.layout.display = None
        estimate = estimate_cost([params], self.unit_price)
        note = " · nothing is billed" if self.unit_price.emulated else ""
        tooltip = estimate.describe()
        self.price_label.value = (
            f'<span class="fw-price" title="{esc(tooltip)}" style="font-size:12px;color:#444;'
            f'white-space:nowrap">{esc(estimate.brief() + note)}</span>'
        )

    def _start_price(self) -> None:
        """Fetch the server's unit price on the running loop (never blocking; without a running
        loop the documented default stays)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._tasks.spawn(self.load_price(), on_error=lambda _exc: None)

    async def load_price(self) -> UnitPrice:
        """Ask the server for the unit price (fal's ``/models/pricing``; the emulator's is marked
        emulated) and update the estimate; returns the price in use (the default when none)."""
        client = self._client
        price = await fetch_unit_price(client)
        if price is not None and client is self._client and not self.closed:
            self.unit_price = price
            self._refresh_price()
        return self.unit_price

    def _on_emulator(self) -> bool:
        from ..emulator import is_emulator_url

        return self._mode == "emulator" or is_emulator_url(self._client.config.base_url)

    def _target(self) -> Target:
        """Where Show code sends requests: fal itself, even when the panel runs on an emulator."""
        config = self._client.config
        if self._on_emulator():
            from ..client.config import DEFAULT_BASE_URL

            note = (
                "The panel runs on the offline emulator; this code calls fal "
                "(set FAL_KEY in the environment first)."
            )
            return Target(DEFAULT_BASE_URL, "Key", config.endpoint, note)
        return Target(config.base_url, config.auth_scheme, config.endpoint, None)

    def _refresh_code(self) -> None:
        if not self.code.visible:
            return
        try:
            params: FluxLoraInput | InputError = self.params
        except InputError as exc:
            params = exc
        self.code.refresh(params, self._target())

    def _show_banner(self) -> None:
        config = self._client.config
        self.banner.value = banner_html(
            self._mode, config.base_url, config.endpoint, emulator=self._on_emulator()
        )
