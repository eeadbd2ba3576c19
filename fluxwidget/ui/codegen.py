"""Code snippets equivalent to the panel's parameters: fluxwidget, plain httpx and cURL.

The key is always written as ``$FAL_KEY`` / ``os.environ["FAL_KEY"]``, never as a value.
"""

from __future__ import annotations

import json
import mimetypes
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePath

from ..client.config import DEFAULT_BASE_URL, DEFAULT_STORAGE_URL
from ..schema import ENDPOINT_ID, FluxLoraInput

__all__ = [
    "Target",
    "curl_snippet",
    "fluxwidget_snippet",
    "httpx_snippet",
    "local_files",
    "snippets",
]

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
        """The URL a text-to-image job is submitted to."""
        return f"{self.base_url.rstrip('/')}/{self.endpoint.strip('/')}"

    def endpoint_for(self, params: FluxLoraInput) -> str:
        """The endpoint of `params` (its model's, e.g. ``fal-ai/flux-lora/image-to-image``)
        unless this target was set to another one than the default (a proxy's path)."""
        return self.endpoint if self.endpoint != ENDPOINT_ID else type(params).endpoint_id

    def submit_url_for(self, params: FluxLoraInput) -> str:
        """The URL a job with these parameters is submitted to."""
        return f"{self.base_url.rstrip('/')}/{self.endpoint_for(params).strip('/')}"

    @property
    def storage_url(self) -> str:
        """Where uploads get their token: fal's REST host for fal's queue, else the base URL."""
        base = self.base_url.rstrip("/")
        return DEFAULT_STORAGE_URL if base == DEFAULT_BASE_URL else base


IMAGE_FIELDS = ("image_url", "mask_url")
_REMOTE = re.compile(r"^(https?://|data:)", re.IGNORECASE)


def local_files(params: FluxLoraInput) -> dict[str, str]:
    """The image fields (``image_url``, ``mask_url``) that name local files: field → path."""
    found = {}
    for name in IMAGE_FIELDS:
        value = getattr(params, name, None)
        if isinstance(value, str) and value and not _REMOTE.match(value):
            found[name] = value
    return found


def _content_type(path: str) -> str:
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


def _variable(field: str) -> str:
    return field.upper()  # IMAGE_URL, MASK_URL


def _comment(target: Target) -> str:
    return f"# {target.note}\n" if target.note else ""


def fluxwidget_snippet(params: FluxLoraInput, target: Target) -> str:
    """Python with fluxwidget's client; only the fields that differ from the defaults. A local
    input image (or mask) is uploaded to fal's storage first (``client.upload``)."""
    model = type(params).__name__
    files = local_files(params)
    fields = params.model_dump(mode="json", exclude_defaults=True)
    fields.setdefault("prompt", params.prompt)
    for name in IMAGE_FIELDS:
        if hasattr(params, name):
            fields.setdefault(name, getattr(params, name))  # required: always written
    args = "".join(
        f"    {name}={name if name in files else repr(value)},\n" for name, value in fields.items()
    )
    client_args = [f'api_key=os.environ["{KEY_ENV}"]', f"base_url={target.base_url!r}"]
    if target.auth_scheme != "Key":
        client_args.append(f"auth_scheme={target.auth_scheme!r}")
    if target.endpoint != ENDPOINT_ID:
        client_args.append(f"endpoint={target.endpoint!r}")
    uploads = "".join(
        f"{name} = await client.upload({path!r})  # the local file → a fal storage URL\n"
        for name, path in files.items()
    )
    endpoint = f"  # {target.endpoint_for(params)}" if model != "FluxLoraInput" else ""
    return (
        f"{_comment(target)}import os\n\n"
        f"from fluxwidget import FluxClient, {model}\n\n"
        f"client = FluxClient({', '.join(client_args)})\n"
        f"{uploads}"
        f"params = {model}({endpoint}\n{args})\n"
        "result = await client.generate(params)  # top-level await works in a notebook\n"
        "print(result.seed, [image.url for image in result.images])\n"
    )


def _httpx_upload(target: Target) -> str:
    return (
        "\n\ndef upload(http, path):\n"
        '    """A local file to fal\'s storage: a token for the key, then the bytes; its URL."""\n'
        "    token = http.post(\n"
        f'        "{target.storage_url}/storage/auth/token",\n'
        '        params={"storage_type": "fal-cdn-v3"},\n'
        "        json={},\n"
        "    )\n"
        "    token.raise_for_status()\n"
        "    token = token.json()\n"
        '    with open(path, "rb") as file:\n'
        "        data = file.read()\n"
        "    sent = httpx.post(\n"
        "        f\"{token['base_url']}/files/upload\",\n"
        "        content=data,\n"
        "        headers={\n"
        "            \"Authorization\": f\"{token['token_type']} {token['token']}\",\n"
        '            "Content-Type": mimetypes.guess_type(path)[0] or "application/octet-stream",\n'
        "        },\n"
        "        timeout=120,\n"
        "    )\n"
        "    sent.raise_for_status()\n"
        '    return sent.json()["access_url"]\n\n'
    )


def httpx_snippet(params: FluxLoraInput, target: Target) -> str:
    """Plain httpx against the queue API: (upload local inputs,) submit, poll, fetch."""
    files = local_files(params)
    items = "".join(f"    {name!r}: {value!r},\n" for name, value in params.to_payload().items())
    payload = "{\n" + items + "}"
    imports = "import mimetypes\nimport os\nimport time\n" if files else "import os\nimport time\n"
    uploads = "".join(
        f"    payload[{name!r}] = upload(http, {path!r})  # the local file → its fal URL\n"
        for name, path in files.items()
    )
    return (
        f"{_comment(target)}{imports}\nimport httpx\n"
        f"{_httpx_upload(target) if files else ''}\n"
        f'headers = {{"Authorization": f"{target.auth_scheme} {{os.environ[\'{KEY_ENV}\']}}"}}\n'
        f"payload = {payload}\n\n"
        "with httpx.Client(headers=headers, timeout=60) as http:\n"
        f"{uploads}"
        f"    submitted = http.post({target.submit_url_for(params)!r}, json=payload)\n"
        "    submitted.raise_for_status()\n"
        "    job = submitted.json()\n"
        '    while http.get(job["status_url"]).json()["status"] != "COMPLETED":\n'
        "        time.sleep(0.5)\n"
        '    response = http.get(job["response_url"])\n'
        "    response.raise_for_status()\n"
        "    result = response.json()\n\n"
        'print(result["seed"], [image["url"] for image in result["images"]])\n'
    )


def _curl_upload(name: str, path: str, target: Target, auth: str) -> str:
    variable = _variable(name)
    token_url = f"{target.storage_url}/storage/auth/token?storage_type=fal-cdn-v3"
    return (
        f"# upload {PurePath(path).name} to fal's storage (needs jq): a token, then the bytes\n"
        f"TOKEN=$(curl -sS -X POST {shlex.quote(token_url)} {auth} \\\n"
        "  -H \"Content-Type: application/json\" -d '{}')\n"
        f'{variable}=$(curl -sS -X POST "$(echo "$TOKEN" | jq -r .base_url)/files/upload" \\\n'
        '  -H "Authorization: $(echo "$TOKEN" | jq -r \'.token_type + " " + .token\')" \\\n'
        f"  -H {shlex.quote('Content-Type: ' + _content_type(path))} \\\n"
        f"  --data-binary @{shlex.quote(path)} | jq -r .access_url)\n"
    )


def curl_snippet(params: FluxLoraInput, target: Target) -> str:
    """cURL: (upload local inputs,) submit, then poll ``status_url`` and fetch
    ``response_url`` from its answer."""
    files = local_files(params)
    payload = params.to_payload()
    marks = {name: f"@@{_variable(name)}@@" for name in files}
    payload.update(marks)
    body = shlex.quote(json.dumps(payload, ensure_ascii=False))
    for name, mark in marks.items():
        body = body.replace(mark, f"'\"${_variable(name)}\"'")  # the uploaded URL, expanded
    auth = f'-H "Authorization: {target.auth_scheme} ${KEY_ENV}"'
    uploads = "".join(_curl_upload(name, path, target, auth) for name, path in files.items())
    return (
        f"{_comment(target)}{uploads}"
        f"curl -sS -X POST {shlex.quote(target.submit_url_for(params))} \\\n"
        f"  {auth} \\\n"
        '  -H "Content-Type: application/json" \\\n'
        f"  -d {body}\n"
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
