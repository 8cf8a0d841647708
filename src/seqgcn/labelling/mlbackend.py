"""seqgcn as Label Studio's ML backend: pre-labels, the labelling order set by the sampler, retraining as answers arrive.

Label Studio (1.23.2) calls an ML backend on four routes (the protocol of
HumanSignal/label-studio-ml-backend, ``label_studio_ml/api.py``):

```
GET  /health   Label Studio: is it up?  seqgcn adds its state (training or idle, labelled, classes, model, ...)
POST /setup    on connecting a project: {"project", "schema", ...}         -> {"model_version"}
POST /predict  {"tasks": [task, ...], "label_config", ...}                 -> {"results": [one per task], "model_version"}
POST /webhook  every project event: {"action", "annotation", "task", ...}  -> ANNOTATION_* answers go into labels.csv
```

State: ``labels.csv`` is the only state. An answer is appended to it before its
webhook is answered, through the path of ``seqgcn import-labels`` (`check_answers`,
then the atomic `append_labels`), with its refusals: a conflicting answer is
refused, logged and listed on /health, never applied or dropped in silence.
Replaying a webhook appends nothing (an answer already on file is counted as
such). Killed at any moment, the server restarts from labels.csv and serves again
after one retrain; Label Studio does not resend a webhook that failed, so answers
given while it was down come from the project's export at start (``missed``).

Model: a retrain is one `run_query` round on labels.csv (the same function, seed
and options as ``seqgcn query``, so the same batch), plus the learner's class of
every image. It runs in a background thread at start and after every
``retrain_every`` new answers; /predict is served meanwhile from the last finished
one (`Model`), by table look-ups only.

Scores: Label Studio stores one ``score`` per prediction and the Data Manager
sorts by it. The image the sampler picked ``k``-th of a batch of ``b`` scores
``0.5·k/b`` (in [0, 0.5)); any other image scores 1, and so does a picked image
labelled since, so that sorting by score, ascending, lists the pending batch
first, in the sampler's order.

Tasks map to images by ``data.path`` (seqgcn's tasks carry the image path
relative to ``--images`` there), else by a task URL whose path or query value
ends in an image's relative path (``http://host/prefix/a/b.png``,
``/data/local-files/?d=images/a/b.png``). Nothing from a request is opened,
executed or used as a file path: a task only ever names one of the images
scanned under ``--images``.

Label Studio 1.23.2 shows scores and pre-labels of the predictions whose version
is the project's ``model_version`` only; `sync_project` keeps it on the newest model.

The web part (`make_app`, `serve`: Starlette on uvicorn, extra ``seqgcn[serve]``)
only parses, checks size and credentials, and hands dicts to `MLBackend`.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from seqgcn.checks import InputError
from seqgcn.io import StorageError
from seqgcn.labelling.exports import CHOICE_NAME, IMAGE_KEY, PATH_KEY
from seqgcn.labelling.images import find_images
from seqgcn.labelling.labels import answers_from_tasks, append_labels, check_answers, normalise_path, read_labels
from seqgcn.labelling.query import run_query

log = logging.getLogger("seqgcn.mlbackend")

INSTALL_HINT = "pip install seqgcn[serve]"
MAX_BODY = 8 * 2**20      # bytes of a request body; tasks with embedded images are large: raise it with --max-body-mb
MAX_URL = 4096            # characters of a task URL looked at when matching it to an image
MAX_CONFIG = 1_000_000    # characters of a labelling config parsed for the Choices tag's names
REFUSALS_SHOWN = 20       # latest refusals listed on /health
ANSWER_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED")
DELETE_EVENT = "ANNOTATIONS_DELETED"
UNTRAINED = "seqgcn-untrained"  # the model version /setup reports before the first retrain has finished


class ProtocolError(Exception):
    """A request the backend answers with HTTP `status` and ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ServeConfig:
    """What `MLBackend` serves and how often it retrains.

    images : the images folder (``--images``); labels : the ``path,label`` CSV, created on the first answer
    budget : images per batch (fewer when fewer are unlabelled)
    method : the feature sampler (`seqgcn.samplers`), as ``seqgcn query --method``
    retrain_every : new answers that start a retrain and a new selection
    overwrite : accept an answer that changes an image's label (the new row wins), as ``import-labels --overwrite``
    query : further keyword arguments of `run_query` (learner_config, seed, threads, subset, image_size, ...)
    """

    images: str
    labels: str
    budget: int = 10
    method: str = "CoreGCN"
    retrain_every: int = 10
    overwrite: bool = False
    query: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Model:
    """What one finished retrain left, served by /predict until the next one finishes.

    version : Label Studio's ``model_version``, new at every retrain
    batch : relative paths the sampler picked, in its order; rank : ``{path: k}`` of `batch`
    predicted : ``{path: class}`` of every image (empty in the first round: no learner yet)
    finished : UTC time the retrain finished (ISO 8601); seconds : wall time of load, train, features, select, predict
    """

    version: str
    method: str
    batch: tuple
    rank: dict
    predicted: dict
    n_labelled: int
    classes: tuple
    finished: str
    seconds: dict


class MLBackend:
    """The protocol's logic, without a web framework: dicts in, dicts out (`ProtocolError` for an HTTP error).

    ``MLBackend(config).start()`` reads the folder and labels.csv and starts the
    first retrain; then `setup`, `predict`, `webhook`, `health` answer requests,
    from any thread. `query` stands in for `run_query` (tests). `on_model`, when
    given, is called with each new `Model` in the retrain thread (`sync_project`);
    its exceptions are logged and shown on /health, never fatal.
    """

    def __init__(self, config: ServeConfig, *, query=run_query, on_model=None):
        self.config = config
        self.query = query
        self.on_model = on_model
        self._lock = threading.Lock()  # labels.csv writes and the fields below
        self._images: frozenset = frozenset()
        self._labels: dict = {}  # replaced, never mutated: readers hold a consistent dict without the lock
        self._model: Model | None = None
        self._training = False
        self._new_answers = 0  # appended since the running (or last) retrain started
        self._retrains = 0
        self._refused: deque = deque(maxlen=REFUSALS_SHOWN)
        self._n_refused = 0
        self._error: str | None = None  # why the last retrain failed (None: it did not)
        self._sync_error: str | None = None  # why the last `on_model` call failed
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ verbs
    def start(self, missed=()) -> None:
        """Read --images and labels.csv (`InputError` on bad ones), then start the first retrain in the background.

        missed : `Answer`s that may have come while the server was down (Label Studio does not
            retry a webhook), e.g. the project's export (`labelstudio.pull`); applied one by one
            before the retrain, through the webhook's checks (a refusal is reported, the rest go on).
        """
        images = frozenset(find_images(self.config.images))
        labels = read_labels(self.config.labels, images=images)
        with self._lock:
            self._images, self._labels = images, labels
        added = 0
        for answer in missed:
            try:
                added += self._apply("CATCH_UP", [answer])["added"]
            except ProtocolError:
                pass  # reported on /health and in the log by `_refuse_locked`
        if added:
            log.info("caught up with %d answer(s) given while the server was down", added)
        self.retrain()

    def retrain(self) -> None:
        """Start a retrain in the background; while one runs, the next starts when it ends (if answers came meanwhile)."""
        with self._lock:
            if self._training:
                return
            self._training, self._new_answers = True, 0
            self._thread = threading.Thread(target=self._retrain_loop, name="seqgcn-retrain", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no retrain runs (True) or `timeout` seconds passed (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                thread = self._thread if self._training else None
            if thread is None:
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            thread.join(left if left is None else min(left, 0.5))

    def setup(self, payload: dict) -> dict:
        model = self._model
        return {"model_version": model.version if model else UNTRAINED}

    def health(self) -> dict:
        with self._lock:
            model, labels, images = self._model, self._labels, self._images
            state = {"status": "UP", "state": "training" if self._training else "idle", "images": len(images),
                     "labelled": len(labels), "classes": sorted(set(labels.values())),
                     "new_answers": self._new_answers, "retrain_every": self.config.retrain_every,
                     "refused": self._n_refused, "last_refusals": list(self._refused), "retrain_error": self._error,
                     "sync_error": self._sync_error}
        state.update(model_version=model.version if model else None, method=model.method if model else None,
                     last_retrain=model.finished if model else None, last_retrain_seconds=model.seconds if model else None,
                     pending_batch=sum(p not in labels for p in model.batch) if model else 0)
        return state

    def predict(self, payload: dict) -> dict:
        """One entry per task, in order: the learner's class as a ``choices`` result and the score (module docstring).

        A task that maps to no image gets ``{"error": ...}`` and no ``result``: Label Studio stores no prediction for it.
        """
        tasks = payload.get("tasks")
        if not isinstance(tasks, list):
            raise ProtocolError(400, "key 'tasks' must be a list of Label Studio tasks")
        model = self._model
        if model is None:
            raise ProtocolError(503, "no model yet: the first retrain is running (see GET /health)")
        from_name, to_name, offered = choice_names(payload.get("label_config"))
        labels, images = self._labels, self._images
        results = []
        for i, task in enumerate(tasks):
            path, error = task_image(task, images, where=f"task #{i}")
            if error:
                results.append({"error": error, "model_version": model.version})
                continue
            k = model.rank.get(path)
            score = 0.5 * k / len(model.batch) if k is not None and path not in labels else 1.0
            label = model.predicted.get(path)
            if offered is not None and label not in offered:
                label = None  # a class the project does not offer: Label Studio would refuse the whole response
            result = [] if label is None else [{"from_name": from_name, "to_name": to_name, "type": "choices",
                                                "value": {"choices": [label]}}]
            results.append({"result": result, "score": score, "model_version": model.version})
        return {"results": results, "model_version": model.version}

    def webhook(self, payload: dict) -> dict:
        """Label Studio's event `payload`: answers into labels.csv; other events acknowledged and ignored.

        Refused (HTTP 4xx/5xx, logged, listed on /health; nothing written): a malformed
        answer, a task that maps to no image, an answer that conflicts with labels.csv
        (unless `overwrite`), labels.csv that cannot be read or written.
        """
        action = payload.get("action")
        if not isinstance(action, str):
            raise ProtocolError(400, "key 'action' is missing: not a Label Studio webhook event")
        if action == DELETE_EVENT:
            deleted = payload.get("annotations")
            ids = [a.get("id") for a in deleted if isinstance(a, dict)] if isinstance(deleted, list) else []
            self._refuse(action, 409, f"annotation(s) {ids} deleted in Label Studio: labels.csv is append-only and "
                         "keeps their labels; correct one by answering again (serve with --overwrite) or edit labels.csv")
        if action not in ANSWER_EVENTS:
            return {"status": "ignored", "action": action}
        answers = self._answers(action, payload)
        if not answers:
            return {"status": "ignored", "action": action, "reason": "no finished answer (cancelled or skipped)"}
        answer = self._apply(action, answers)
        if answer.pop("due"):
            self.retrain()
        return answer

    # ------------------------------------------------------------------ helpers
    def _apply(self, action: str, answers: list) -> dict:
        """Check `answers` against labels.csv as `import-labels` does and append them, all or none (refusals reported)."""
        with self._lock:
            try:
                labels = read_labels(self.config.labels, images=self._images)
                rows, unchanged = check_answers(answers, images=self._images, labels=labels,
                                                overwrite=self.config.overwrite)
                if rows:
                    append_labels(self.config.labels, rows)
            except InputError as exc:
                self._refuse_locked(action, 409, str(exc))
            except StorageError as exc:
                self._refuse_locked(action, 507, f"labels.csv not written: {exc}")
            labels.update(rows)
            self._labels = labels
            self._new_answers += len(rows)
            due = self._new_answers >= self.config.retrain_every
        for path, label in rows:
            log.info("%s: %s = %s (%d labelled)", action, path, label, len(labels))
        return {"status": "ok", "action": action, "added": len(rows), "unchanged": unchanged, "labelled": len(labels),
                "due": due}

    def _answers(self, action: str, payload: dict) -> list:
        """The `Answer`s of an ANNOTATION(S)_* event (refused when malformed or when a task maps to no image)."""
        annotations, tasks = payload.get("annotation"), payload.get("task")
        if action != "ANNOTATIONS_CREATED":
            annotations, tasks = [annotations], [tasks]
        if not isinstance(annotations, list) or not isinstance(tasks, list):
            self._refuse(action, 400, "keys 'annotation' and 'task' must be lists in ANNOTATIONS_CREATED")
        by_id = {t.get("id"): t for t in tasks if isinstance(t, dict)}
        answers = []
        for annotation in annotations:
            if not isinstance(annotation, dict):
                self._refuse(action, 400, "key 'annotation' is missing or not an object")
            key = annotation.get("task")
            task = tasks[0] if len(tasks) == 1 else by_id.get(key) if isinstance(key, (int, str)) else None
            if not isinstance(task, dict):
                self._refuse(action, 400, f"annotation {annotation.get('id', '?')}: its task is missing from the event")
            path, error = task_image(task, self._images, where=f"task {task.get('id', '?')}")
            if error:
                self._refuse(action, 422, error)
            try:
                answers += answers_from_tasks([{"id": task.get("id"), "data": {PATH_KEY: path}, "annotations": [annotation]}],
                                              source=action)
            except InputError as exc:
                self._refuse(action, 422, str(exc))
        return answers

    def _refuse(self, action: str, status: int, message: str):
        with self._lock:
            self._refuse_locked(action, status, message)

    def _refuse_locked(self, action: str, status: int, message: str):
        self._n_refused += 1
        self._refused.append({"time": _now(), "action": action, "error": message})
        log.warning("refused %s: %s", action, message)
        raise ProtocolError(status, message)

    def _retrain_loop(self) -> None:
        while True:
            try:
                model, error = self._train_once(), None
            except Exception as exc:  # an InputError (e.g. every image labelled) or a bug: keep serving the last model
                log.error("retrain failed: %s", exc, exc_info=not isinstance(exc, InputError))
                model, error = None, f"{type(exc).__name__}: {exc}"
            with self._lock:
                self._error = error
                if model is not None:
                    self._model = model  # /predict and /setup answer with it from now on
            if model is not None and self.on_model is not None:
                self._sync(model)  # still "training" on /health until Label Studio knows the new version
            with self._lock:
                if self._new_answers < self.config.retrain_every:
                    self._training = False
                    return
                self._new_answers = 0  # answers came in while training: again

    def _sync(self, model: Model) -> None:
        try:
            self.on_model(model)
            error = None
        except Exception as exc:  # Label Studio down, a wrong key: the backend serves on
            log.warning("could not tell Label Studio of model %s: %s", model.version, exc)
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._sync_error = error

    def _train_once(self) -> Model:
        cfg = self.config
        images = frozenset(find_images(cfg.images))  # new image files join at the next retrain
        labels = read_labels(cfg.labels, images=images)
        with self._lock:
            self._images, self._labels = images, labels
            self._retrains += 1
            number = self._retrains
        unlabelled = len(images) - len(labels)
        if unlabelled == 0:
            raise InputError(f"every one of the {len(images)} images is labelled: nothing left to select")
        t = time.perf_counter()
        result = self.query(cfg.images, cfg.labels, budget=min(cfg.budget, unlabelled), method=cfg.method,
                            skip_unreadable=True, predict_all=True, **cfg.query)
        seconds = {k: round(v, 3) for k, v in result.seconds.items()}
        seconds["total"] = round(time.perf_counter() - t, 3)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        model = Model(version=f"seqgcn-{stamp}-r{number}-n{result.n_labelled}", method=result.method,
                      batch=tuple(result.picked), rank={p: k for k, p in enumerate(result.picked)},
                      predicted=dict(result.predicted), n_labelled=result.n_labelled, classes=tuple(result.classes),
                      finished=_now(), seconds=seconds)
        for path in result.skipped:
            log.warning("skipped unreadable image %r", path)
        log.info("retrain %d: %d labelled, %s picked %d; model %s; seconds %s", number, result.n_labelled, result.method,
                 len(result.picked), model.version, seconds)
        return model


def sync_project(url: str, api_key: str, title: str):
    """An `on_model` callback: make project `title` show each new model's predictions (through label-studio-sdk).

    Label Studio 1.23.2's Data Manager averages the *Prediction score* column over
    the predictions whose version is the project's ``model_version``, and the
    labelling view shows those as pre-labels; connecting a backend sets it to the
    backend's title, which matches no prediction, and Label Studio accepts only a
    backend's title or a stored prediction's version there. So the project's
    seqgcn backends (those whose version, from /setup, starts with ``seqgcn-``)
    are renamed to the new version, and the project's ``model_version`` set to it.
    """
    from seqgcn.labelling import labelstudio

    client = labelstudio.connect(url, api_key)

    def on_model(model: Model) -> None:
        project = labelstudio.find_project(client, title)
        if project is None:
            raise InputError(f"Label Studio at {url} has no project titled {title!r} (--project)")
        ours = [b for b in client.ml.list(project=project.id) if (b.model_version or "").startswith("seqgcn-")]
        if not ours:
            raise InputError(f"project {title!r} has no seqgcn backend connected yet (Settings > Model)")
        for backend in ours:
            client.ml.update(id=backend.id, url=backend.url, project=project.id, title=model.version)  # 1.23.2 wants the url
        client.projects.update(id=project.id, model_version=model.version)
        log.info("Label Studio project %r now shows model %s", title, model.version)

    return on_model


def task_image(task, images: frozenset, *, where: str) -> tuple[str | None, str | None]:
    """``(relative path, None)`` of the image of Label Studio `task`, or ``(None, error)`` (module docstring).

    Only ever looks `task`'s strings up in `images`; it reads no file.
    """
    if not isinstance(task, dict):
        return None, f"{where}: expected a task object, got {type(task).__name__}"
    where = f"task {task['id']}" if isinstance(task.get("id"), int) else where
    data = task.get("data")
    if not isinstance(data, dict):
        return None, f"{where}: key 'data' is missing or not an object"
    path = data.get(PATH_KEY)
    rel = normalise_path(path) if isinstance(path, str) and len(path) <= MAX_URL else None
    if rel in images:
        return rel, None
    urls = [data.get(IMAGE_KEY)] + [v for k, v in data.items() if k not in (IMAGE_KEY, PATH_KEY)]
    for url in urls:
        if isinstance(url, str) and not url.startswith("data:"):
            found = _match_url(url[:MAX_URL], images)
            if found:
                return found, None
    shown = repr(path[:200]) if isinstance(path, str) else "none"
    return None, (f"{where}: no image of --images matches it (data.path: {shown}, and no task URL ends in an image's "
                  "path relative to --images)")


def choice_names(label_config) -> tuple[str, str, frozenset | None]:
    """(from_name, to_name, choice values) of the first ``<Choices>`` tag of a labelling config.

    Without a config that has one: seqgcn's own names (`label_config`) and None (any class).
    """
    if isinstance(label_config, str) and len(label_config) <= MAX_CONFIG:
        try:
            root = ET.fromstring(label_config)
        except ET.ParseError:
            root = None
        for tag in root.iter("Choices") if root is not None else ():
            if tag.get("name") and tag.get("toName"):
                values = frozenset(c.get("value") for c in tag.iter("Choice") if c.get("value"))
                return tag.get("name"), tag.get("toName").split(",")[0], values
    return CHOICE_NAME, IMAGE_KEY, None


def _match_url(url: str, images: frozenset) -> str | None:
    """The image whose relative path is the longest ending of `url`'s path or of one of its query values."""
    parts = urlsplit(url)
    for candidate in [unquote(parts.path)] + [v for _, v in parse_qsl(parts.query)]:
        names = [n for n in normalise_path(candidate).split("/") if n]
        for k in range(len(names)):
            rel = "/".join(names[k:])
            if rel in images:
                return rel
    return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# --------------------------------------------------------------------------- the web part (extra seqgcn[serve])
def parse_basic_auth(text: str | None) -> tuple[str, str] | None:
    """``"USER:PASSWORD"`` -> (user, password); None or "" -> None (no authentication)."""
    if not text:
        return None
    user, colon, password = text.partition(":")
    if not colon or not user or not password:
        raise InputError("--basic-auth must be USER:PASSWORD, both non-empty (or unset $SEQGCN_BASIC_AUTH)")
    return user, password


def make_app(backend: MLBackend, *, basic_auth: tuple[str, str] | None = None, max_body: int = MAX_BODY):
    """The Starlette app of the four routes; every answer is JSON, an error ``{"error": message}``."""
    try:
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse
        from starlette.routing import Route
    except ImportError:
        raise InputError(f"the ML backend needs Starlette and uvicorn: {INSTALL_HINT}") from None
    want = None if basic_auth is None else "Basic " + base64.b64encode(":".join(basic_auth).encode()).decode("ascii")

    def check_auth(request) -> None:
        if want is not None and not hmac.compare_digest(request.headers.get("authorization", "").encode(), want.encode()):
            raise ProtocolError(401, "basic authentication required (set it in Label Studio's model connection)")

    async def read_json(request) -> dict:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body:
            raise ProtocolError(413, f"request body of {int(declared)} bytes exceeds the limit of {max_body} (--max-body-mb)")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_body:
                raise ProtocolError(413, f"request body exceeds the limit of {max_body} bytes (--max-body-mb)")
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(400, f"malformed JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise ProtocolError(400, f"expected a JSON object, got {type(payload).__name__}")
        return payload

    def route(path: str, handler, *, method: str, blocking: bool = False):
        async def endpoint(request):
            try:
                check_auth(request)
                payload = await read_json(request) if method == "POST" else {}
                answer = await run_in_threadpool(handler, payload) if blocking else handler(payload)
            except ProtocolError as exc:
                headers = {"WWW-Authenticate": 'Basic realm="seqgcn"'} if exc.status == 401 else None
                return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)
            return JSONResponse(answer)

        return Route(path, endpoint, methods=[method])

    health = lambda payload: backend.health()  # noqa: E731
    return Starlette(routes=[route("/health", health, method="GET"), route("/", health, method="GET"),
                             route("/setup", backend.setup, method="POST"),
                             route("/predict", backend.predict, method="POST"),
                             route("/webhook", backend.webhook, method="POST", blocking=True)])


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port) and listening; `InputError` naming the address when that fails."""
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
        sock.listen(128)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --host or --port") from None
    return sock


def serve(backend: MLBackend, sock: socket.socket, *, basic_auth=None, max_body: int = MAX_BODY, missed=()) -> None:
    """Start `backend` (with the `missed` answers) and answer HTTP on the listening `sock` until interrupted (uvicorn)."""
    app = make_app(backend, basic_auth=basic_auth, max_body=max_body)
    import uvicorn

    backend.start(missed)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_keep_alive=5, limit_concurrency=64))
    server.run(sockets=[sock])
