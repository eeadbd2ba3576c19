"""Run folders on disk: one folder per run (never-overwriting names, the manifest, the journal),
and the one record format of a job (manifest rows, records embedded in images)."""

from .records import ACTIVE_STATES, FINAL_STATES, JobRecord, SavedImage
from .runs import JOURNAL, MANIFEST, Run, default_runs_root, list_runs

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "JOURNAL",
    "MANIFEST",
    "JobRecord",
    "Run",
    "SavedImage",
    "default_runs_root",
    "list_runs",
]
