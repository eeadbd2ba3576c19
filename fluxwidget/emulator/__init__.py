"""A fal-compatible queue for ``fal-ai/flux-lora`` on loopback, with placeholder images.

``Emulator`` runs a real HTTP server (uvicorn, background thread) that speaks fal's queue
protocol; ``shared_emulator()`` is the process-wide one used when no key is set;
``serve()`` blocks for ``python -m fluxwidget emulator``.
"""

from fluxwidget.emulator.server import Emulator, JobInfo, serve, shared_emulator

__all__ = ["Emulator", "JobInfo", "serve", "shared_emulator"]
