"""Code snippets equivalent to the panel's parameters: fluxwidget, plain httpx and cURL.

The key is always written as ``$FAL_KEY`` / ``os.environ["FAL_KEY"]``, never as a value.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from ..schema import ENDPOINT_ID, FluxLoraInput

__all__ = ["Target", "curl_snippet", "fluxwidget_snippet", "httpx_snippet", "snippets"]

KEY_ENV = "FAL_KEY"


@dataclass(frozen=True)
class Target:
    """Where the snippets send the request: base URL, auth scheme and endpoint."""

    base_url: str
    auth_scheme: str = "Key"
    endpoint: str = ENDPOINT_ID
    note: str | None = None
    """A comment put on top of every snippet (e.g. "this runs on the local emulator")."""

    @property
    def submit_url(self) -> str:
        """The URL a job is submitted to."""
        return f"{self.base_url.rstrip('/')}/{self.endpoint.strip('/')}"


def _comment(target: Target) -> str:
    return f"# {target.note}\n" if target.note else ""


def fluxwidget_snippet(params: FluxLoraInput, target: Target) -> str:
    """Python with fluxwidget's client; only the fields that differ from the defaults."""
    fields = params.model_dump(mode="json", exclude_defaults=True)
    fields.setdefault("prompt", params.prompt)
    args = "".join(f"    {name}={value!r},\n" for name, value in fields.items())
    client_args = [f'api_key=os.environ["{KEY_ENV}"]', f"base_url={target.base_url!r}"]
    if target.auth_scheme != "Key":
        client_args.append(f"auth_scheme={target.auth_scheme!r}")
    if target.endpoint != ENDPOINT_ID:
        client_args.append(f"endpoint={target.endpoint!r}")
    return (
        f"{_comment(target)}import os\n\n"
        "from fluxwidget import FluxClient, FluxLoraInput\n\n"
        f"client = FluxClient({', '.join(client_args)})\n"
        f"params = FluxLoraInput(\n{args})\n"
        "result = await client.generate(params)  # top-level await works in a notebook\n"
        "print(result.seed, [image.url for image in result.images])\n"
    )


def httpx_snippet(params: FluxLoraInput, target: Target) -> str:
    """Plain httpx against the queue API: submit, poll the status, fetch the result."""
    items = "".join(f"    {name!r}: {value!r},\n" for name, value in params.to_payload().items())
    payload = "{\n" + items + "}"
    return (
        f"{_comment(target)}import os\nimport time\n\nimport httpx\n\n"
        f'headers = {{"Authorization": f"{target.auth_scheme} {{os.environ[\'{KEY_ENV}\']}}"}}\n'
        f"payload = {payload}\n\n"
        "with httpx.Client(headers=headers, timeout=60) as http:\n"
        f"    submitted = http.post({target.submit_url!r}, json=payload)\n"
        "    submitted.raise_for_status()\n"
        "    job = submitted.json()\n"
        '    while http.get(job["status_url"]).json()["status"] != "COMPLETED":\n'
        "        time.sleep(0.5)\n"
        '    response = http.get(job["response_url"])\n'
        "    response.raise_for_status()\n"
        "    result = response.json()\n\n"
        'print(result["seed"], [image["url"] for image in result["images"]])\n'
    )


def curl_snippet(params: FluxLoraInput, target: Target) -> str:
    """cURL: submit, then poll ``status_url`` and fetch ``response_url`` from its answer."""
    body = json.dumps(params.to_payload(), ensure_ascii=False)
    auth = f'-H "Authorization: {target.auth_scheme} ${KEY_ENV}"'
    return (
        f"{_comment(target)}"
        f"curl -sS -X POST {shlex.quote(target.submit_url)} \\\n"
        f"  {auth} \\\n"
        '  -H "Content-Type: application/json" \\\n'
        f"  -d {shlex.quote(body)}\n"
        '# the answer holds "status_url" and "response_url": poll the first until\n'
        '# "status" is "COMPLETED", then fetch the result:\n'
        f'curl -sS {auth} "$STATUS_URL"\n'
        f'curl -sS {auth} "$RESPONSE_URL"\n'
    )


def snippets(params: FluxLoraInput, target: Target) -> dict[str, str]:
    """All three snippets by tab title."""
    return {
        "fluxwidget": fluxwidget_snippet(params, target),
        "httpx": httpx_snippet(params, target),
        "cURL": curl_snippet(params, target),
    }
