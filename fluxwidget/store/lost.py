"""Submits whose reply was lost: found again in fal's request listing, never paid for twice.

A job whose submit was in flight when its reply was lost (a dropped connection, a crash) is
``unknown``: fal may have accepted and billed it, but there is no request id to collect it by.
Its ``submitting`` event holds the sha256 of the exact body sent and the time it was sent
(`fluxwidget.client.history.payload_sha256`). `find_lost_submits` lists the endpoint's requests
from a little before the earliest such submit to now and matches them with `match_lost_submits`
(a pure function: same body hash, sent no earlier than the submit minus `CLOCK_SKEW`, one
request for one job, in time order). A match is journaled as ``submitted`` — the job is then
collected like any other, with no new submit and no new charge. A job whose body is not in a
complete listing was never accepted: it may be sent again, with the user's consent
(``resubmit_unknown``). When the listing is not available (a proxy without fal's platform API,
a refused key, the network), the job is left alone and its error says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..client.history import RequestListing, RequestSummary, isoformat, parse_time, payload_sha256
from ..client.protocols import JobClient
from ..errors import AuthenticationError, NotFoundError, ProtocolError, TransportError
from .records import JobRecord, record_input
from .runs import Run

__all__ = [
    "CLOCK_SKEW",
    "InFlightSubmit",
    "LostSubmitCheck",
    "find_lost_submits",
    "in_flight_submits",
    "match_lost_submits",
]

log = logging.getLogger("fluxwidget.store")

CLOCK_SKEW = timedelta(minutes=2)
"""How much earlier than our own clock said fal's clock may stamp a request we sent."""


@dataclass(frozen=True)
class InFlightSubmit:
    """What the journal says of a submit whose reply never came."""

    job_id: str
    payload_sha256: str
    sent_at: datetime


def match_lost_submits(
    lost: Iterable[InFlightSubmit],
    requests: Iterable[RequestSummary],
    *,
    skew: timedelta = CLOCK_SKEW,
    claimed: Iterable[str] = (),
) -> dict[str, RequestSummary]:
    """The request of each lost submit that has one, by job id.

    A request matches a submit when the hash of its ``json_input`` is the submit's and it was
    sent no earlier than the submit's time minus `skew`. Submits are served in the order they
    were sent, each taking the earliest request left, so two jobs with the same body get two
    requests (or one gets none) — never one request for two jobs. Requests in `claimed` (ids
    the run already holds) and items without a body or a time are never matched.
    """
    taken = set(claimed)
    usable: dict[str, RequestSummary] = {}
    for request in requests:
        if request.input_sha256 and request.sent_at is not None:
            usable.setdefault(request.request_id, request)
    ordered = sorted(usable.values(), key=lambda r: (r.sent_at, r.request_id))
    matches: dict[str, RequestSummary] = {}
    for submit in sorted(lost, key=lambda s: (s.sent_at, s.job_id)):
        if submit.job_id in matches:
            continue
        for request in ordered:
            if request.request_id in taken or request.input_sha256 != submit.payload_sha256:
                continue
            assert request.sent_at is not None
            if request.sent_at >= submit.sent_at - skew:
                matches[submit.job_id] = request
                taken.add(request.request_id)
                break
    return matches


def _fallback_hash(record: JobRecord) -> str | None:
    """The hash of the body a record's input makes (journals written before hashes were): the
    input as its endpoint's model, with the URLs its local files were uploaded to."""
    try:
        payload = record_input(record).to_payload()
    except Exception:
        return None
    uploads = record.uploads
    for name in ("image_url", "mask_url"):
        if payload.get(name) in uploads:
            payload[name] = uploads[payload[name]]
    for lora in payload.get("loras") or []:
        if lora.get("path") in uploads:
            lora["path"] = uploads[lora["path"]]
    return payload_sha256(payload)


def in_flight_submits(run: Run, records: Iterable[JobRecord]) -> list[InFlightSubmit]:
    """The last ``submitting`` event of each record, from the run's journal."""
    wanted = {record.job_id: record for record in records}
    last: dict[str, dict[str, Any]] = {}
    for event in run.journal.records():
        job_id = event.get("job_id")
        if event.get("event") == "submitting" and isinstance(job_id, str) and job_id in wanted:
            last[job_id] = event
    submits = []
    for job_id, event in last.items():
        digest = event.get("payload_sha256")
        if not isinstance(digest, str) or len(digest) != 64:
            digest = _fallback_hash(wanted[job_id])
        sent = parse_time(event.get("sent_at"))
        if sent is None and isinstance(event.get("time"), (int, float)):
            sent = datetime.fromtimestamp(float(event["time"]), timezone.utc)
        if digest is not None and sent is not None:
            submits.append(InFlightSubmit(job_id, digest, sent))
    return submits


@dataclass
class LostSubmitCheck:
    """What the listing said of a run's unknown jobs."""

    found: dict[str, str] = field(default_factory=dict)
    """Job id → request id: journaled as submitted, to be collected."""
    absent: list[str] = field(default_factory=list)
    """Job ids whose body is not in a complete listing: never accepted, safe to send again."""
    unchecked: dict[str, str] = field(default_factory=dict)
    """Job id → why it could not be checked (left alone)."""

    @property
    def checked(self) -> bool:
        """Whether anything was looked up."""
        return bool(self.found or self.absent or self.unchecked)


def _why_unavailable(exc: BaseException, platform_url: str) -> str:
    code = getattr(exc, "status_code", None)
    if isinstance(exc, NotFoundError) or code in (405, 501):
        guess = "a proxy without fal's platform API?"
        return f"{platform_url} has no request listing ({code}: {guess})"
    if isinstance(exc, AuthenticationError):
        return f"the request listing was refused ({exc.status_code}: {exc})"
    if isinstance(exc, TransportError):
        return f"the request listing could not be reached ({exc})"
    if isinstance(exc, ProtocolError):
        return f"the request listing's reply could not be read ({exc.problem})"
    return f"the request listing failed ({type(exc).__name__}: {exc})"


_UNCHECKED = (
    "the submit was in flight when its reply was lost and {why}: it may have been accepted "
    "(and billed), so it is left alone — look for it in your fal request history"
)
_ABSENT = (
    "the submit was in flight when its reply was lost, and fal's request listing (from {start}) "
    "has no request with its exact input: it was not accepted. Resuming with resubmit_unknown "
    "(--resubmit-unknown) sends it again"
)
_NO_JOURNAL = "the run's journal has no hash and time of it to match"


async def find_lost_submits(
    client: JobClient,
    run: Run,
    records: Iterable[JobRecord] | None = None,
    *,
    now: datetime | None = None,
    skew: timedelta = CLOCK_SKEW,
) -> LostSubmitCheck:
    """Look for the ``unknown`` jobs of `run` (or of `records`) in fal's request listing.

    Found jobs get their request id, journaled as ``submitted`` (state ``queued``: collect
    them); the others keep state ``unknown`` with an error saying whether they were absent
    from a complete listing or could not be checked. Never raises for a listing that fails.
    """
    check = LostSubmitCheck()
    unknown = [
        r
        for r in (run.records() if records is None else records)
        if r.state == "unknown" and r.request_id is None
    ]
    if not unknown:
        return check
    submits = {s.job_id: s for s in in_flight_submits(run, unknown)}
    for record in unknown:
        if record.job_id not in submits:
            check.unchecked[record.job_id] = _NO_JOURNAL
    by_endpoint: dict[str, list[InFlightSubmit]] = {}
    for record in unknown:
        if record.job_id in submits:
            endpoint = record.endpoint or client.config.endpoint
            by_endpoint.setdefault(endpoint, []).append(submits[record.job_id])
    claimed = {r.request_id for r in run.records() if r.request_id is not None}
    moment = now or datetime.now(timezone.utc)
    for endpoint, lost in by_endpoint.items():
        start = min(s.sent_at for s in lost) - skew
        try:
            listing: RequestListing = await client.list_requests(
                endpoint, start=start, end=moment + skew
            )
        except Exception as exc:  # any failure: the jobs are left alone, and say why
            platform = str(getattr(client.config, "platform_url", "the platform API"))
            why = _why_unavailable(exc, platform)
            log.info("lost submits of %s not checked: %s", run.name, why)
            for submit in lost:
                check.unchecked[submit.job_id] = why
            continue
        matches = match_lost_submits(lost, listing.requests, skew=skew, claimed=claimed)
        for submit in lost:
            request = matches.get(submit.job_id)
            if request is not None:
                check.found[submit.job_id] = request.request_id
                claimed.add(request.request_id)
            elif listing.complete:
                check.absent.append(submit.job_id)
            else:
                check.unchecked[submit.job_id] = (
                    f"the request listing went on past {listing.pages} pages (not all of it "
                    "was read)"
                )
    await _apply(run, unknown, check, submits, skew)
    return check


async def _apply(
    run: Run,
    unknown: Sequence[JobRecord],
    check: LostSubmitCheck,
    submits: dict[str, InFlightSubmit],
    skew: timedelta,
) -> None:
    for record in unknown:
        if record.job_id in check.found:
            record.request_id = check.found[record.job_id]
            await run.log("submitted", record, found_by="request listing")
            record.state, record.error, record.final = "queued", None, False
            record.detail = "Found in fal's request listing: collecting it"
        elif record.job_id in check.absent:
            start = submits[record.job_id].sent_at - skew
            record.error = _ABSENT.format(start=isoformat(start))
            record.detail = "Not accepted (not in fal's request listing)"
        elif record.job_id in check.unchecked:
            record.error = _UNCHECKED.format(why=check.unchecked[record.job_id])
            record.detail = "Unknown: the request listing is not available"
    if check.checked:
        run.changed()
