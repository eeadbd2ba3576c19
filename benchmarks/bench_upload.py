"""Uploading one big local file (a LoRA's weights) to fal's storage over an emulated 20 ms link:
fluxwidget vs fal-client vs a raw single httpx POST — wall time and peak memory.

The file (``--mb`` MiB of random bytes, 150 by default) is written to a temporary folder. Every
measurement runs in a fresh child process against a fresh emulator process (see ``_harness.py``)
with a 20 ms round trip where a new connection costs 2 extra round trips (TCP + TLS), so no
client gets warm connections, a cached upload or another's leftovers:

- ``fluxwidget``: `FluxClient.upload` (a token, then — above 90 MB — a multipart upload of
  10 MB parts, 4 in flight, each read from disk when it is sent), the upload cache off;
- ``fal-client``: fal's own ``AsyncClient.upload_file`` (above 100 MB a multipart upload of
  10 MB parts, 10 in flight). fal-client hard-codes its hosts, so the benchmark patches the
  module constants ``fal_client.client.REST_URL`` and ``CDN_URL`` to the emulator's URL before
  making the client: acceptable in a benchmark, never in real code;
- ``httpx``: the floor — the token call, then one ``POST /files/upload`` of the whole file,
  streamed from the open file by httpx (no parts, no retries, no checks).

Wall time: from the call to the URL in hand (min / median / max over ``--runs``). Memory: the
child's peak resident memory (``ru_maxrss``) minus its resident memory just before the upload,
in the timed runs (median), and the peak of Python allocations (``tracemalloc``) in one more,
separate run per client (tracing slows allocation, so it is not timed).

``BENCH_SHORT=1``: a 12 MiB file and 2 runs (a smoke test: single uploads, no multipart).

Run: .venv/bin/python benchmarks/bench_upload.py [--mb 150] [--runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _harness import SHORT, ServerProcess, fal_client_available, header, rss_mib, write_json

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024
LINK = (0.02, 2.0)


# --- one upload, in a child process -----------------------------------------------------------


async def _upload(client_name: str, url: str, key: str, file: Path, size: int) -> str:
    if client_name == "fluxwidget":
        from fluxwidget.client import FluxClient

        async with FluxClient(api_key=key, base_url=url, upload_cache=False) as client:
            return await client.upload(file)
    if client_name == "fal-client":
        import fal_client
        import fal_client.client as fal_module

        fal_module.REST_URL = url  # the benchmark's one patch: fal-client's hosts are constants
        fal_module.CDN_URL = url
        fal = fal_client.AsyncClient(key=key)
        return str(await fal.upload_file(file))
    import httpx

    async with httpx.AsyncClient(timeout=600) as http:
        reply = await http.post(
            f"{url}/storage/auth/token",
            params={"storage_type": "fal-cdn-v3"},
            json={},
            headers={"Authorization": f"Key {key}"},
        )
        reply.raise_for_status()
        token = reply.json()

        async def body() -> Any:
            with file.open("rb") as handle:
                while chunk := handle.read(MiB):
                    yield chunk

        reply = await http.post(
            f"{token['base_url']}/files/upload",
            content=body(),
            headers={
                "Authorization": f"{token['token_type']} {token['token']}",
                "Content-Type": "application/octet-stream",
                "X-Fal-File-Name": file.name,
                "Content-Length": str(size),
            },
        )
        reply.raise_for_status()
        return str(reply.json()["access_url"])


def child(args: argparse.Namespace) -> None:
    """Measure one upload and print its figures as one JSON line."""
    import httpx  # noqa: F401  (imports are not part of the upload's memory)

    if args.child == "fluxwidget":
        import fluxwidget.client  # noqa: F401
    elif args.child == "fal-client":
        import fal_client  # noqa: F401
    if args.trace:
        import tracemalloc

        tracemalloc.start()
    file = Path(args.file)
    before = rss_mib()
    start = time.perf_counter()
    url = asyncio.run(_upload(args.child, args.url, args.key, file, file.stat().st_size))
    wall = time.perf_counter() - start
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    traced = None
    if args.trace:
        traced = tracemalloc.get_traced_memory()[1] / MiB
    print(
        json.dumps(
            {"wall": wall, "rss_delta": peak_rss - before, "traced_peak": traced, "url": url}
        )
    )


# --- the benchmark ----------------------------------------------------------------------------


def write_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(4 * MiB, left))
            out.write(chunk)
            left -= len(chunk)


def measure(name: str, file: Path, *, trace: bool) -> dict[str, Any]:
    server = ServerProcess(workers=1, seconds_per_step=0.01)
    try:
        server.set_link(*LINK)
        env = {**os.environ, "FLUXWIDGET_UPLOAD_CACHE": "off"}
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).resolve()),
                "--child",
                name,
                "--url",
                server.url,
                "--key",
                server.api_key,
                "--file",
                str(file),
                *(["--trace"] if trace else []),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} failed:\n{done.stderr}")
        figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        uploads = server.ask("uploads")
        assert uploads["sizes"] == [file.stat().st_size], (name, uploads)
        return figures
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=12 if SHORT else 150, help="file size in MiB")
    parser.add_argument("--runs", type=int, default=2 if SHORT else 3)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    names = ["fluxwidget", "fal-client", "httpx"]
    if not fal_client_available():
        print("fal-client is not installed (pip install -e '.[bench]'): left out")
        names.remove("fal-client")
    print(header())
    print(
        f"one {args.mb} MiB file, {args.runs} runs per client, link: {LINK[0] * 1000:g} ms "
        f"round trip, +{LINK[1]:g} round trips per new connection"
    )
    results: dict[str, dict[str, Any]] = {name: {"wall": [], "rss_delta": []} for name in names}
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as folder:
        file = Path(folder) / "weights.bin"
        write_file(file, args.mb * MiB)
        for run in range(args.runs):
            order = names[run % len(names) :] + names[: run % len(names)]  # take turns
            for name in order:
                figures = measure(name, file, trace=False)
                results[name]["wall"].append(figures["wall"])
                results[name]["rss_delta"].append(figures["rss_delta"])
        for name in names:
            results[name]["traced_peak"] = measure(name, file, trace=True)["traced_peak"]

    print()
    print(
        f"{'client':<12} {'wall s min':>10} {'median':>8} {'max':>8} {'MiB/s':>7} "
        f"{'peak RSS Δ MiB':>15} {'traced peak MiB':>16}"
    )
    print("-" * 82)
    for name in names:
        wall = results[name]["wall"]
        median = statistics.median(wall)
        rate = args.mb / median
        rss = statistics.median(results[name]["rss_delta"])
        traced = results[name]["traced_peak"]
        print(
            f"{name:<12} {min(wall):>10.2f} {median:>8.2f} {max(wall):>8.2f} {rate:>7.0f} "
            f"{rss:>15.1f} {traced:>16.1f}"
        )
    if SHORT:
        print("(BENCH_SHORT: smoke-test settings, figures not meaningful)")
    write_json(args.json, {"mb": args.mb, "runs": args.runs, "link": LINK, "clients": results})


if __name__ == "__main__":
    main()
