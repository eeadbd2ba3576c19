"""One job end to end: validate → upload → submit → journal → updates → result → download → save
→ done.

The panel, the CLI's ``generate`` and ``recover``, sweeps and the notebooks all run jobs through
`JobPipeline`, so there is one file-name rule, one record format and one set of guarantees:

- the request id is in the run's journal (fsynced) before anything waits on the job;
- a job is ``done`` only when every image is on disk, with its record embedded;
- an error that asking again could fix (a 5xx, a dropped connection) leaves the job collectable:
  `JobPipeline.collect` (used by resume and ``recover``) fetches its result — or, when the result
  has expired, its images from the URLs journaled at completion;
- a submit is never retried after the server may have accepted it (the client's rule); a job
  whose submit was in flight when the process died is ``unknown``, never silently resubmitted;
- a local file the input names (a LoRA path, ``image_url``, ``mask_url``) is uploaded before
  the submit (never inside it or its retries): the submitted input carries the URL, the
  record keeps both (`JobRecord.uploads`), and a failed upload fails the job
  before anything is paid.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import images
from .client.handle import is_final_error
from .client.history import isoformat, payload_sha256
from .client.protocols import JobClient, JobHandle
from .client.status import Completed, InProgress, Queued, StatusUpdate, Waiting, describe
from .client.uploads import FileKind, local_files, upload_local_files
from .errors import (
    FalError,
    GenerationTimeout,
    InputError,
    JobCancelledError,
    ResultExpiredError,
    TransportError,
)
from .schema import FluxImage, FluxLoraInput, FluxLoraOutput, validate_input
from .store.records import JobRecord, SavedImage, record_input
from .store.runs import Run

__all__ = ["JobPipeline", "OnChange", "OnImage", "OnUpload"]

log = logging.getLogger("fluxwidget.pipeline")

OnChange = Callable[[JobRecord, StatusUpdate | None], None]
"""Called on the loop whenever a job's state or status line changes (keep it quick)."""
OnImage = Callable[[JobRecord, SavedImage, bytes], Awaitable[None] | None]
"""Called with each image's bytes right after it is saved (e.g. to make a thumbnail)."""
OnUpload = Callable[[str, int, int], None]
"""Called on the loop with (local path, bytes sent, total bytes) as a local file is uploaded."""


def _emulated(output: FluxLoraOutput) -> bool:
    extra = output.model_extra or {}
    return bool(extra.get("emulator", False))


class JobPipeline:
    """Runs the jobs of one run folder through one client.

    `on_change(record, update)` hears every change of state or status line; `on_result(record,
    output)` hears that the server is done with a job (its result is in hand — None when it is
    collected from journaled URLs; the downloads follow);
    `on_image(record, image, data)` gets each image's bytes once it is on disk. All run on the
    event loop. `on_upload(path, sent, total)` hears the progress of each local file's upload
    (e.g. a progress bar). `step_logs` asks fal for the log lines that count a running job's
    steps ("running 12/28"); without them a job's stream carries an event per change of
    state, not per step.
    """

    def __init__(
        self,
        client: JobClient,
        run: Run,
        *,
        on_change: OnChange | None = None,
        on_image: OnImage | None = None,
        on_result: Callable[[JobRecord, FluxLoraOutput | None], None] | None = None,
        on_upload: OnUpload | None = None,
        image_concurrency: int = 4,
        step_logs: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.step_logs = step_logs
        self.run_folder = run
        self.on_change = on_change
        self.on_upload = on_upload
        self.on_image = on_image
        self.on_result = on_result
        self._image_slots = asyncio.Semaphore(image_concurrency)
        self._clock = clock
        self.handles: dict[str, JobHandle] = {}
        """The handle of each job on its way, by job id (for cancel)."""
        run.claim()  # one writer per run folder: RunFolderBusy at once when another writes it
        config = client.config
        run.remember_server(config.base_url, config.auth_scheme)

    def __repr__(self) -> str:
        return f"JobPipeline({self.run_folder!r})"

    # --- planning ---------------------------------------------------------------------------

    def plan(
        self,
        input: FluxLoraInput | dict[str, Any],
        *,
        job_id: str | None = None,
        axes: dict[str, Any] | None = None,
        coords: list[int] | None = None,
    ) -> JobRecord:
        """Validate an input (InputError before anything is sent) and add it as a pending job."""
        params = validate_input(input)
        record = JobRecord(
            job_id=job_id or self.run_folder.new_job_id(),
            input=params.to_payload(),
            endpoint=self.client.config.endpoint_for(params),
            seed=params.seed,
            axes=dict(axes or {}),
            coords=coords,
        )
        return self.run_folder.add(record)

    # --- running ----------------------------------------------------------------------------

    async def run(
        self,
        job: JobRecord | FluxLoraInput | dict[str, Any],
        *,
        timeout: float | None = None,
    ) -> JobRecord:
        """Run a job to the end: every image saved, or the error recorded and raised.

        When this coroutine is cancelled (the panel closed, Ctrl-C), the job is cancelled on
        the server best-effort, so nothing runs (and bills) unseen.
        """
        record = job if isinstance(job, JobRecord) else self.plan(job)
        if record.request_id is not None:
            return await self.collect(record, timeout=timeout)
        params = await self._upload(record)
        self._set(record, "submitting", "Submitting…")
        sent = datetime.now(timezone.utc)  # with the body's hash: how a lost reply is found
        await self.run_folder.log(
            "submitting",
            record,
            payload_sha256=payload_sha256(params.to_payload()),
            sent_at=isoformat(sent),
            uploads=record.uploads,
        )
        record.timings["submitted_at"] = self._clock()
        try:
            handle = await self.client.submit(
                params,
                journal=self.run_folder.journal,
                journal_fields={"job_id": record.job_id},
            )
        except asyncio.CancelledError:
            self._set(record, "unknown", "stopped while the submit was in flight: it may have "
                      "been accepted (and billed)")  # fmt: skip
            record.error = record.detail
            raise
        except FalError as exc:
            if exc.maybe_accepted:  # no usable reply: never resubmit blindly
                record.error = f"the submit may have been accepted: {exc}"
                self._set(record, "unknown", record.error)
            else:  # never sent (no connection) or refused (401, 403, 422, ...)
                await self._fail(record, exc, final=not isinstance(exc, TransportError))
            raise
        except Exception as exc:
            await self._fail(record, exc, final=True)
            raise
        record.request_id = handle.request_id
        self.handles[record.job_id] = handle
        self._set(record, "queued", "Submitted")
        try:
            return await self._follow(record, handle, timeout=timeout)
        finally:
            self.handles.pop(record.job_id, None)

    async def _upload(self, record: JobRecord) -> FluxLoraInput:
        """The input to submit: local files (LoRA weights, input image, mask) uploaded (their
        URLs in it and in `record.uploads`). A failure fails the job, nothing submitted: final
        unless the network failed (then running the job again may succeed)."""
        try:
            params = record_input(record)
            found = local_files(params)
            if not found:
                return params
            names = ", ".join(sorted({path.rsplit("/", 1)[-1] for _, path, _ in found}))
            self._set(record, record.state, f"Uploading {names}…")
            params, uploads = await upload_local_files(params, self._upload_one)
        except asyncio.CancelledError:
            self._set(record, record.state, "Stopped while uploading; nothing was submitted")
            raise
        except (FalError, InputError) as exc:
            await self._fail(record, exc, final=not isinstance(exc, TransportError))
            raise
        except Exception as exc:
            await self._fail(record, exc, final=True)
            raise
        record.uploads = uploads
        return params

    async def _upload_one(
        self, path: str | Path, /, *, field: str = "path", kind: FileKind = "any"
    ) -> str:
        listener = self.on_upload
        progress = None
        if listener is not None:

            def progress(sent: int, total: int) -> None:
                listener(str(path), sent, total)

        return await self.client.upload(path, field=field, kind=kind, on_progress=progress)

    async def collect(self, record: JobRecord, *, timeout: float | None = None) -> JobRecord:
        """Finish a job that was submitted earlier (resume, ``recover``), by its request id:
        its result, or — when the result has expired — its images from the journaled URLs."""
        if record.request_id is None:
            raise ValueError(f"{record.job_id} was never submitted: nothing to collect")
        if record.state == "done":
            return record
        handle = self.client.handle(
            record.request_id,
            journal=self.run_folder.journal,
            journal_fields={"job_id": record.job_id},
        )
        if record.image_urls and record.state == "fetching":
            return await self._save_from_urls(record)
        self.handles[record.job_id] = handle
        try:
            return await self._follow(record, handle, timeout=timeout)
        except ResultExpiredError:
            if not record.image_urls:
                raise
            return await self._save_from_urls(record)
        finally:
            self.handles.pop(record.job_id, None)

    async def cancel(self, record: JobRecord) -> str:
        """Ask the server to cancel a submitted job; returns its answer (``CANCELLATION_REQUESTED``,
        ``ALREADY_COMPLETED``, ...). A running job may still finish: it is then collected."""
        handle = self.handles.get(record.job_id)
        if handle is None:
            if record.request_id is None:
                raise ValueError(f"{record.job_id} was never submitted: nothing to cancel")
            handle = self.client.handle(
                record.request_id,
                journal=self.run_folder.journal,
                journal_fields={"job_id": record.job_id},
            )
        return await handle.cancel()

    async def _follow(
        self, record: JobRecord, handle: JobHandle, *, timeout: float | None
    ) -> JobRecord:
        try:
            output = await asyncio.wait_for(self._wait_and_fetch(record, handle), timeout)
            self._result_in_hand(record, output)
            await self._save(record, output, handle.billable_units)
        except asyncio.TimeoutError:
            await self._cancel_quietly(record, handle)
            error = GenerationTimeout(
                f"no result after {timeout:g} s; cancellation was requested",
                request_id=record.request_id,
            )
            await self._fail(record, error, final=False, state="cancelled")
            raise error from None
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel_quietly(record, handle))
            self._set(record, "cancelled", "Stopped; " + record.detail)
            raise
        except JobCancelledError:
            await self.run_folder.log("cancelled", record)
            self._set(record, "cancelled", "Cancelled")
            raise
        except Exception as exc:
            await self._fail(record, exc, final=is_final_error(exc))
            raise
        return record

    async def _wait_and_fetch(self, record: JobRecord, handle: JobHandle) -> FluxLoraOutput:
        async for update in handle.updates(logs=self.step_logs):
            now = self._clock()
            if isinstance(update, Queued):
                self._set(record, "queued", describe(update), update)
            elif isinstance(update, InProgress):
                record.timings.setdefault("started_at", now)
                elapsed = now - record.timings["started_at"]
                self._set(record, "running", describe(update, elapsed), update)
            elif isinstance(update, Waiting):  # rate limited: the wait is shown, not hidden
                self._set(record, record.state, describe(update), update)
            elif isinstance(update, Completed):
                record.timings["completed_at"] = now
                if update.inference_time is not None:
                    record.timings["inference"] = float(update.inference_time)
                self._set(record, "fetching", "Fetching the result…", update)
        return await handle.fetch_result()

    async def _save(
        self, record: JobRecord, output: FluxLoraOutput, billable_units: float | None
    ) -> None:
        record.seed = output.seed if output.seed is not None else record.seed
        record.nsfw = [output.is_nsfw(i) for i in range(len(output.images))]
        record.emulator = _emulated(output)
        record.billable_units = billable_units
        record.image_urls = [img.url for img in output.images if not img.url.startswith("data:")]
        inference = (output.timings or {}).get("inference")
        if isinstance(inference, (int, float)):
            record.timings["inference"] = float(inference)
        self._set(record, "fetching", f"Downloading {len(output.images)} image(s)…")
        saved = await asyncio.gather(
            *(self._download_and_save(record, i, image) for i, image in enumerate(output.images))
        )
        await self._finish(record, list(saved))

    async def _save_from_urls(self, record: JobRecord) -> JobRecord:
        """Download the images of a completed job from the URLs journaled at completion."""
        self._result_in_hand(record, None)
        self._set(record, "fetching", f"Downloading {len(record.image_urls)} image(s)…")
        try:
            saved = await asyncio.gather(
                *(
                    self._download_and_save(record, i, FluxImage(url=url))
                    for i, url in enumerate(record.image_urls)
                )
            )
        except Exception as exc:
            await self._fail(record, exc, final=False)
            raise
        await self._finish(record, list(saved))
        return record

    def _result_in_hand(self, record: JobRecord, output: FluxLoraOutput | None) -> None:
        """The server is done with the job (what is left is downloading): say so."""
        if self.on_result is not None:
            try:
                self.on_result(record, output)
            except Exception:
                log.exception("on_result callback failed")

    async def _download_and_save(
        self, record: JobRecord, index: int, image: FluxImage
    ) -> SavedImage:
        async with self._image_slots:
            on_disk = await asyncio.to_thread(self.run_folder.saved_image, record, index)
            if on_disk is not None:  # saved by an earlier run that stopped before saying so
                path, data = on_disk, await asyncio.to_thread(on_disk.read_bytes)
            else:
                data = await self.client.download(image)
                path = self.run_folder.image_path(record.job_id, index, image.content_type, data)
                metadata = record.image_metadata(index, self.run_folder.name)
                await asyncio.to_thread(images.save_image, data, path, metadata)
        try:
            width, height = await asyncio.to_thread(images.image_size, data)
        except Exception:  # the file is saved; a size we cannot read is not an error
            width, height = image.width or 0, image.height or 0
        saved = SavedImage(
            index=index,
            file=path.name,
            width=width or None,
            height=height or None,
            content_type=image.content_type,
            nsfw=record.nsfw[index] if index < len(record.nsfw) else False,
            url=None if image.url.startswith("data:") else image.url,
        )
        record.images = sorted([*record.images, saved], key=lambda item: item.index)
        if self.on_image is not None:
            outcome = self.on_image(record, saved, data)
            if inspect.isawaitable(outcome):
                await outcome
        return saved

    async def _finish(self, record: JobRecord, saved: list[SavedImage]) -> None:
        record.images = sorted(saved, key=lambda item: item.index)
        record.timings["done_at"] = self._clock()
        if "submitted_at" in record.timings:
            record.timings["total"] = record.timings["done_at"] - record.timings["submitted_at"]
        await self.run_folder.log(
            "saved", record, images=[asdict(image) for image in record.images], seed=record.seed
        )
        record.error = None
        self._set(record, "done", f"Done — {len(saved)} image(s) saved")

    async def _fail(
        self, record: JobRecord, exc: BaseException, *, final: bool, state: str = "error"
    ) -> None:
        record.error = str(exc) or type(exc).__name__
        record.error_type = type(exc).__name__
        record.final = final
        if final:
            await self.run_folder.log("failed", record, error=record.error, final=True)
        self._set(record, state, record.error)

    async def _cancel_quietly(self, record: JobRecord, handle: JobHandle) -> None:
        try:
            outcome = await asyncio.wait_for(handle.cancel(), 5.0)
        except Exception as exc:  # best effort: the job stays collectable
            log.info("cancel of %s failed: %s", record.request_id, type(exc).__name__)
            record.detail = f"the cancel call failed ({type(exc).__name__})"
        else:
            record.cancel_answer = outcome
            record.detail = f"cancel answered {outcome}"

    def _set(
        self, record: JobRecord, state: str, detail: str, update: StatusUpdate | None = None
    ) -> None:
        if state != record.state:  # the manifest follows states, not every status line
            record.state = state
            self.run_folder.changed()
        record.detail = detail
        if self.on_change is not None:
            try:
                self.on_change(record, update)
            except Exception:  # a display callback must never break a paid job
                log.exception("on_change callback failed")
