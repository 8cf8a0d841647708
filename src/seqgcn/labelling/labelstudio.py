"""A live Label Studio: push a batch as tasks, pull the finished annotations (extra ``seqgcn[labelstudio]``).

Through the official client, `label-studio-sdk` (imported only here, only when
used). A project is found by its title: `push` creates it with the labelling
config for the classes given, or updates the config of an existing one, and
adds the batch's images that are not in it yet (matched by ``data.path``).
`pull` reads the project's JSON export — the same format `import-labels` reads
from a file — so the answers go through the same checks.

The server's address and key come from ``--url``/``--api-key`` or the
environment variables ``LABEL_STUDIO_URL`` and ``LABEL_STUDIO_API_KEY``
(the SDK's own names). Either a personal access token or a legacy token works.
"""

from __future__ import annotations

import json

import xml.etree.ElementTree as ET

from seqgcn.checks import InputError
from seqgcn.labelling.exports import CHOICE_NAME, PATH_KEY, label_config
from seqgcn.labelling.labels import answers_from_tasks

INSTALL_HINT = "pip install seqgcn[labelstudio]"


def connect(url: str, api_key: str):
    """A `label_studio_sdk.LabelStudio` client for `url`; ValueError naming the extra when the SDK is missing."""
    if not url or not api_key:
        raise InputError("Label Studio needs --url and --api-key (or LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY); "
                         "the key is under Account & Settings in Label Studio")
    try:
        from label_studio_sdk import LabelStudio
    except ImportError:
        raise InputError(f"the Label Studio commands need the label-studio-sdk package: {INSTALL_HINT}") from None
    return LabelStudio(base_url=url.rstrip("/"), api_key=api_key)


def push(client, title: str, tasks: list[dict], classes) -> tuple[int, int, list]:
    """Create or update project `title` and add the `tasks` it lacks; return (project id, tasks added, classes offered).

    The labelling config offers `classes` plus the classes an existing project already offers (none is ever dropped).
    """
    with _api_errors(client):
        project = find_project(client, title)
        if project is None:
            classes = sorted(set(classes))
            project = client.projects.create(title=title, label_config=label_config(classes))
        else:
            classes = sorted(set(classes) | set(_offered(project.label_config)))
            client.projects.update(id=project.id, label_config=label_config(classes))
        have = {task.data.get(PATH_KEY) for task in client.tasks.list(project=project.id) if task.data}
        new = [t for t in tasks if t["data"][PATH_KEY] not in have]
        if new:
            client.projects.import_tasks(id=project.id, request=new)
    return int(project.id), len(new), classes


def pull(client, title: str) -> list:
    """The `Answer`s in project `title`'s JSON export (tasks without a finished annotation have none)."""
    with _api_errors(client):
        project = find_project(client, title)
        if project is None:
            raise InputError(f"Label Studio has no project titled {title!r}; push a batch first (seqgcn labelstudio push)")
        raw = b"".join(client.projects.exports.download_sync(id=project.id, export_type="JSON"))
    try:
        tasks = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InputError(f"Label Studio's export of project {title!r} is not JSON (line {exc.lineno}: {exc.msg})") from None
    return answers_from_tasks(tasks, source=f"Label Studio project {title!r}")


def find_project(client, title: str):
    """The project titled exactly `title`, or None."""
    for project in client.projects.list(title=title):
        if project.title == title:
            return project
    return None


def _offered(config: str | None) -> list:
    """The Choice values under seqgcn's Choices tag of a labelling config (empty when it cannot be read)."""
    try:
        root = ET.fromstring(config or "")
    except ET.ParseError:
        return []
    return [c.get("value") for tag in root.iter("Choices") if tag.get("name") == CHOICE_NAME
            for c in tag.iter("Choice") if c.get("value")]


class _api_errors:
    """Turn the SDK's HTTP and connection errors into one-line ValueErrors naming the server."""

    def __init__(self, client):
        wrapper = getattr(client, "_client_wrapper", None)
        self.url = wrapper.get_base_url() if wrapper is not None else "the server"

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is None or isinstance(exc, ValueError):
            return False
        from label_studio_sdk.core.api_error import ApiError

        if isinstance(exc, ApiError):
            body = exc.body if isinstance(exc.body, str) else json.dumps(exc.body)[:300]
            raise InputError(f"Label Studio at {self.url} answered HTTP {exc.status_code}: {body}") from None
        if isinstance(exc, OSError) or type(exc).__module__.startswith(("httpx", "httpcore")):
            raise InputError(f"cannot reach Label Studio at {self.url}: {' '.join(str(exc).split())}") from None
        return False
