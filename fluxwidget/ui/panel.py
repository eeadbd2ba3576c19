"""FluxPanel: the notebook playground for fal-ai/flux-lora, composed of the ui parts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from ..schema import FieldProblem, FluxLoraInput, FluxLoraOutput, InputError, validate_input
from ._types import ClientLike
from ._widgets import close_tree, error_html, muted
from .code_view import CodeView
from .codegen import Target
from .controls import ParameterForm
from .grid import ResultGrid
from .history import HistoryView, restore_values
from .jobs import Job
from .keys import KeyBox, banner_html
from .records import RunRecord
from .status import error_text
from .tasks import TaskSet

__all__ = ["FluxPanel"]

MAX_JOB_ROWS = 8


def _fields(model: FluxLoraInput) -> dict[str, Any]:
    return {name: getattr(model, name) for name in FluxLoraInput.model_fields}


class FluxPanel:
    """Every flux-lora parameter, live job status, an image grid and a history, in one cell.

    ``FluxPanel()`` runs on fal when ``FAL_KEY`` (or ``FAL_KEY_ID`` + ``FAL_KEY_SECRET``) is
    set, else on the built-in emulator; ``FluxPanel(api_key=...)`` or ``FluxPanel(client=...)``
    choose explicitly. Display it as the last expression of a cell (or ``panel.widget``).
    """

    def __init__(self, client: ClientLike | None = None, *, api_key: str | None = None) -> None:
        if client is not None and api_key is not None:
            raise TypeError("give either client= or api_key=, not both")
        self._client, self._mode = _choose_client(client, api_key)
        self._tasks = TaskSet(self._report, thread_cleanup=self._close_client_connections)
        self._jobs: list[Job] = []
        self._runs: list[RunRecord] = []
        self._count = 0

        self.banner = widgets.HTML()
        self.keys = KeyBox(self.use_key)
        self.form = ParameterForm()
        self.generate_button = widgets.Button(
            description="Generate",
            icon="play",
            button_style="primary",
            tooltip="Submit a job with these parameters (several may run at once)",
        )
        self.form_message = widgets.HTML()
        self.code = CodeView()
        self.jobs_box = widgets.VBox()
        self.grid = ResultGrid()
        self.history = HistoryView(self.restore)
        self.history_view = widgets.Accordion(children=[self.history.box], titles=("History",))
        self.history_view.selected_index = None
        actions = widgets.HBox([self.generate_button, self.code.toggle, self.form_message])
        self.widget = widgets.VBox(
            [
                self.banner,
                self.keys.box,
                self.form.widget,
                actions,
                self.code.box,
                self.jobs_box,
                self.grid.box,
                self.history_view,
            ]
        )

        self.generate_button.on_click(lambda _button: self._generate_clicked())
        self.form.reuse_seed.on_click(lambda _button: self.reuse_last_seed())
        self.form.on_change(self._form_changed)
        self.code.toggle.observe(lambda _change: self._refresh_code(), "value")
        self._show_banner()
        self._form_changed(self.form.problems)

    # --- the Python API ---------------------------------------------------------------------

    @property
    def client(self) -> ClientLike:
        """The client jobs are submitted with."""
        return self._client

    @property
    def mode(self) -> str:
        """``"emulator"``, ``"fal"`` (made from a key) or ``"client"`` (given)."""
        return self._mode

    @property
    def params(self) -> FluxLoraInput:
        """The form's values as the input model; raises InputError when the form is invalid."""
        return self.form.params()

    def set(self, input: FluxLoraInput | Mapping[str, Any] | None = None, /, **params: Any) -> None:
        """Put parameters into the controls, e.g. ``panel.set(num_images=2, seed=7)``.

        Only the given fields change. Invalid values raise InputError and change nothing.
        """
        values: dict[str, Any] = {}
        if isinstance(input, FluxLoraInput):
            values.update(_fields(input))
        elif input is not None:
            values.update(input)
        values.update(params)
        checked = validate_input({"prompt": "placeholder", **values})
        self.form.apply({name: getattr(checked, name) for name in values})

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
        """Switch to a client with this key (kept by the client only, never in a widget)."""
        from ..client import FluxClient

        if self._mode == "emulator":
            self._client, self._mode = FluxClient(api_key=key), "fal"
        else:
            config = self._client.config
            self._client = FluxClient(
                api_key=key,
                base_url=config.base_url,
                auth_scheme=config.auth_scheme,
                endpoint=config.endpoint,
            )
        self._show_banner()
        self._refresh_code()

    def reuse_last_seed(self) -> None:
        """Fix the seed to the one the last run used."""
        if self._runs and self._runs[-1].seed is not None:
            self.form.apply({"seed": self._runs[-1].seed})

    def restore(self, run: RunRecord) -> None:
        """Put a run's parameters (with the seed it used) back into the controls."""
        self.form.apply(_fields(restore_values(run)))

    def close(self) -> None:
        """Cancel waiting tasks and close every widget of the panel."""
        self._tasks.cancel_all()
        for part in (self.form, self.code, self.grid, self.history):
            part.close()
        for job in self._jobs:
            job.row.close()
        close_tree(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        render = getattr(self.widget, "_repr_mimebundle_", None)
        if render is None:
            return {"text/plain": "FluxPanel (closed)"}
        return render(**kwargs)

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
        job = Job(self._count, self._client, params)
        self._jobs.append(job)
        shown = [job.row.box, *self.jobs_box.children]
        while len(shown) > MAX_JOB_ROWS:
            old = next((j for j in self._jobs if j.finished and j.row.box in shown), None)
            if old is None:
                break
            shown.remove(old.row.box)
            old.row.close()
        self.jobs_box.children = tuple(shown)
        return job

    async def _run(self, job: Job) -> RunRecord:
        record = await job.run()
        self._runs.append(record)
        self.grid.add_run(record)
        self.history.add(record)
        self.form.reuse_seed.disabled = record.seed is None
        return record

    async def _close_client_connections(self) -> None:
        """Close the client's connections on the current loop (a job thread's, ending)."""
        aclose = getattr(self._client, "aclose", None)
        if aclose is not None:
            await aclose()

    def _job_failed(self, job: Job, exc: BaseException) -> None:
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

    def _target(self) -> Target:
        config = self._client.config
        note = None
        if self._mode == "emulator":
            note = "This panel runs on the local emulator; leave base_url out to use fal."
        return Target(config.base_url, config.auth_scheme, config.endpoint, note)

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
        self.banner.value = banner_html(self._mode, config.base_url, config.endpoint)


def _choose_client(client: ClientLike | None, api_key: str | None) -> tuple[ClientLike, str]:
    if client is not None:
        return client, "client"
    from ..client import FluxClient, key_from_environment
    from ..defaults import emulator_client

    if api_key is not None or key_from_environment() is not None:
        return FluxClient(api_key=api_key), "fal"
    return emulator_client(), "emulator"
