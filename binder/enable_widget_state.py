"""Turn on JupyterLab's "Save Widget State Automatically" for this Python environment.

Writes (merging with what is there) ``<sys.prefix>/share/jupyter/lab/settings/overrides.json``,
the settings override JupyterLab reads at start: notebooks saved in this environment then carry
their widgets' state, so a shared or reopened notebook shows the panel's images. Used by
``binder/postBuild`` and ``make demo``; run it with the environment's own Python.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"


def main() -> Path:
    path = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = json.loads(path.read_text()) if path.exists() else {}
    settings.setdefault(PLUGIN, {})["saveState"] = True
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


if __name__ == "__main__":
    print(f"widget state is saved with notebooks: {main()}")
