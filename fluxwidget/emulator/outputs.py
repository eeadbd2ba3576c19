"""The output of a finished job: rendered images, file URLs or data URIs, the result JSON."""

from __future__ import annotations

import asyncio
import base64
import math
import threading
from collections import OrderedDict
from typing import Any

from fluxwidget.emulator.jobs import Job, Outcome
from fluxwidget.emulator.render import RenderSpec, content_type, render_image, source_size
from fluxwidget.schema import ImageToImageInput, InpaintingInput

NSFW_TRIGGER = "nsfw-test"
"""A prompt containing this word gets image 0 flagged (and black) when the checker is on."""


def render_specs(job: Job) -> list[RenderSpec]:
    """One spec per image of a valid job."""
    data = job.input
    assert data is not None
    width, height = data.pixel_size
    source = job.source if isinstance(data, ImageToImageInput) else None
    mask = job.mask if isinstance(data, InpaintingInput) else None
    strength = data.strength if isinstance(data, ImageToImageInput) else 1.0
    if isinstance(data, ImageToImageInput) and data.image_size is None and source is not None:
        width, height = source_size(source)  # fal: the input image's size
    flagged = data.enable_safety_checker and NSFW_TRIGGER in data.prompt.lower()
    loras = tuple((lora.path, lora.scale) for lora in data.loras)
    return [
        RenderSpec(
            prompt=data.prompt,
            seed=job.seed,
            steps=data.num_inference_steps,
            guidance=data.guidance_scale,
            width=width,
            height=height,
            loras=loras,
            output_format=data.output_format,
            index=index,
            num_images=data.num_images,
            black=flagged and index == 0,
            source=source,
            mask=mask,
            strength=strength,
        )
        for index in range(data.num_images)
    ]


class FileStore:
    """Served images by (request id, index): specs forever, bytes in a bounded LRU cache.

    Rendering is deterministic, so an image evicted from the cache is simply drawn again.
    """

    def __init__(self, max_cached: int = 256) -> None:
        self._specs: dict[tuple[str, int], RenderSpec] = {}
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._max = max_cached
        self._lock = threading.Lock()

    def spec(self, request_id: str, index: int) -> RenderSpec | None:
        """The spec of a served image, or None."""
        return self._specs.get((request_id, index))

    async def image(self, request_id: str, index: int, spec: RenderSpec) -> bytes:
        """The encoded bytes, rendered in a worker thread when not cached."""
        key = (request_id, index)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
        data = await asyncio.to_thread(render_image, spec)
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return data

    def publish(self, request_id: str, index: int, spec: RenderSpec) -> None:
        """Make an image downloadable under /files/."""
        self._specs[(request_id, index)] = spec


def file_path(request_id: str, index: int, output_format: str) -> str:
    """The URL path of a served image."""
    return f"/files/{request_id}/{index}.{output_format}"


async def produce(store: FileStore, job: Job, inference_time: float) -> Outcome:
    """Render the images of a job and build fal's result JSON."""
    data = job.input
    assert data is not None
    images: list[dict[str, Any]] = []
    for spec in render_specs(job):
        raw = await store.image(job.request_id, spec.index, spec)
        mime = content_type(spec.output_format)
        if data.sync_mode:
            url = f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"
        else:
            store.publish(job.request_id, spec.index, spec)
            path = file_path(job.request_id, spec.index, spec.output_format)
            url = job.base_url.rstrip("/") + path
        name = f"flux-emulator-{job.request_id[:8]}-{spec.index}.{spec.output_format}"
        images.append(
            {
                "url": url,
                "width": spec.width,
                "height": spec.height,
                "content_type": mime,
                "file_name": name,
                "file_size": len(raw),
            }
        )
    body = {
        "images": images,
        "timings": {"inference": round(inference_time, 4)},
        "seed": job.seed,
        "has_nsfw_concepts": [spec.black for spec in render_specs(job)],
        "prompt": data.prompt,
        "emulator": True,
    }
    # fal bills flux-lora per megapixel, rounded up per image; the header carries the units
    units = sum(math.ceil(spec.width * spec.height / 1_000_000) for spec in render_specs(job))
    return Outcome(200, body, headers={"x-fal-billable-units": str(units)})
