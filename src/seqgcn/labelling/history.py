"""The project's query history: ``labels.queries.json`` next to ``labels.csv``, one record per `seqgcn query`.

A record holds the batch file, the method, the picked paths, the held-out
accuracy and the seconds of each phase; the last one tells the next query
whether its batch is still unanswered.
"""

from __future__ import annotations

import json
from pathlib import Path

from seqgcn.checks import InputError
from seqgcn.labelling.labels import read_labels


def history_path(labels) -> Path:
    """``<labels stem>.queries.json`` next to the labels file."""
    labels = Path(labels)
    return labels.with_name(labels.stem + ".queries.json")


def read_history(path: Path) -> list:
    """The records so far ([] when there is no history file yet)."""
    if not path.exists():
        return []
    try:
        history = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the query history {str(path)!r} ({exc}); delete it to start it afresh") from None
    if not isinstance(history, list):
        raise InputError(f"query history {str(path)!r} is not a JSON list; delete it to start it afresh")
    return history


def pending_warning(history: list, images, labels) -> str | None:
    """A warning when the previous batch still has images without a label (None when it is answered)."""
    if not history or not isinstance(history[-1], dict):
        return None
    last = history[-1]
    picked = last.get("picked", [])
    have = read_labels(labels)
    missing = [p for p in picked if p not in have]
    if not missing:
        return None
    return (f"{len(missing)} of the {len(picked)} images of the previous batch {last.get('batch')!r} have no label yet "
            f"(answers pending); import them first with: seqgcn import-labels {last.get('batch')} --images {images} "
            f"--labels {labels}")
