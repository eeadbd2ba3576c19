"""A fal-compatible queue for ``fal-ai/flux-lora`` on loopback, with placeholder images.

``Emulator`` runs a real HTTP server (uvicorn, background thread) that speaks fal's queue
protocol; ``shared_emulator()`` is the process-wide one used when no key is set (it runs in a
child process, so its image rendering never competes with a notebook kernel);
``serve()`` blocks for ``python -m fluxwidget emulator``.
"""

from fluxwidget.emulator.server import (
    Emulator,
    EmulatorProcess,
    JobInfo,
    UploadInfo,
    is_emulator_url,
    serve,
    shared_emulator,
)

__all__ = [
    "Emulator",
    "EmulatorProcess",
    "JobInfo",
    "UploadInfo",
    "is_emulator_url",
    "serve",
    "shared_emulator",
]
