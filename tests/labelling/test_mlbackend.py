"""`seqgcn labelstudio serve`: the ML-backend protocol without a Label Studio server.

Most tests drive the Starlette app in-process (`TestClient`) with a stand-in for
`run_query` that trains nothing, so they check the protocol: scores and
pre-labels, the webhook's path into labels.csv and its refusals, bad requests.
Two tests train for real (tiny images, small CNN): the served batch is the one
`run_query` picks from the same labels and seed, and a server killed with
SIGKILL restarts from labels.csv with no answer lost.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("httpx")  # Starlette's TestClient

with warnings.catch_warnings():  # Starlette 1.x would rather have httpx2 behind its TestClient; httpx works
    warnings.filterwarnings("ignore", message=".*httpx2")
    from starlette.testclient import TestClient  # noqa: E402

from seqgcn.cli import main  # noqa: E402
from seqgcn.labelling.labels import Answer  # noqa: E402
from seqgcn.labelling.mlbackend import MLBackend, ServeConfig, make_app, task_image  # noqa: E402
from seqgcn.labelling.query import QueryResult, run_query  # noqa: E402
from seqgcn.learners.config import LearnerConfig  # noqa: E402

CONFIG = ('<View><Image name="img" value="$image"/><Choices name="cls" toName="img">'
          '<Choice value="dark"/><Choice value="light"/></Choices></View>')


def make_images(folder: Path, n: int = 12) -> list[str]:
    """`n` 8×8 images, even ones dark and odd ones light, some in a subfolder."""
    folder.mkdir()
    (folder / "sub").mkdir()
    paths = []
    rng = np.random.default_rng(0)
    for k in range(n):
        rel = f"sub/im{k:02d}.png" if k % 3 == 0 else f"im{k:02d}.png"
        base = 40 if k % 2 == 0 else 210
        pixels = np.clip(base + rng.integers(-30, 30, size=(8, 8, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / rel)
        paths.append(rel)
    return sorted(paths)


def annotation(task_id: int, label: str, *, ann_id: int = 1, cancelled: bool = False) -> dict:
    return {"id": ann_id, "task": task_id, "was_cancelled": cancelled,
            "result": [{"from_name": "cls", "to_name": "img", "type": "choices", "value": {"choices": [label]}}]}


def event(action: str, path: str, label: str, *, task_id: int = 7, **kw) -> dict:
    return {"action": action, "annotation": annotation(task_id, label, **kw),
            "task": {"id": task_id, "data": {"image": "data:image/png;base64,AAAA", "path": path}}, "project": {"id": 1}}


def labels_rows(path: Path) -> list[tuple]:
    with open(path, newline="") as fh:
        return [tuple(r) for r in csv.reader(fh)]


class FakeQuery:
    """Stands in for `run_query`: picks the first `budget` unlabelled paths in reverse order, predicts "dark"."""

    def __init__(self):
        self.calls = 0

    def __call__(self, images_dir, labels_path, *, budget, method, predict_all, **options):
        from seqgcn.labelling.images import find_images
        from seqgcn.labelling.labels import read_labels

        self.calls += 1
        paths = find_images(images_dir)
        labels = read_labels(labels_path)
        unlabelled = [p for p in paths if p not in labels]
        picked = unlabelled[:budget][::-1]
        return QueryResult(picked=picked, method=method, first_round=False, accuracy=None, n_labelled=len(labels),
                           n_unlabelled=len(unlabelled), n_test=0, classes=sorted(set(labels.values())),
                           seconds={"load": 0.0, "train": 0.0, "features": 0.0, "select": 0.0},
                           predicted={p: "dark" for p in paths} if predict_all else {})


@pytest.fixture
def project(tmp_path):
    paths = make_images(tmp_path / "images")
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,label\n{paths[0]},dark\n{paths[1]},light\n")
    return tmp_path / "images", labels, paths


def backend_client(images, labels, *, run=None, **settings):
    """A started backend (its first retrain finished) and a client of its app; `run` stands in for `run_query`."""
    backend = MLBackend(ServeConfig(images=str(images), labels=str(labels), **settings), query=run or FakeQuery())
    backend.start()
    assert backend.wait(60)
    return backend, TestClient(make_app(backend))


# ------------------------------------------------------------------ /predict
def test_predict_scores_put_the_batch_first_in_the_samplers_order(project):
    images, labels, paths = project
    backend, client = backend_client(images, labels, budget=3)
    batch = list(backend._model.batch)
    assert batch == [p for p in paths if p not in (paths[0], paths[1])][:3][::-1]
    tasks = [{"id": 100 + i, "data": {"path": p}} for i, p in enumerate(paths)]
    answer = client.post("/predict", json={"tasks": tasks, "label_config": CONFIG}).json()
    assert len(answer["results"]) == len(tasks)
    version = answer["model_version"]
    assert version.startswith("seqgcn-") and all(r["model_version"] == version for r in answer["results"])
    scores = {p: r["score"] for p, r in zip(paths, answer["results"])}
    assert sorted(paths, key=lambda p: scores[p])[:3] == batch
    assert [scores[p] for p in batch] == [0.0, 0.5 / 3, 1.0 / 3] and max(scores.values()) == 1.0
    first = answer["results"][0]["result"]
    assert first == [{"from_name": "cls", "to_name": "img", "type": "choices", "value": {"choices": ["dark"]}}]


def test_task_maps_by_path_or_url_never_crashes(project):
    images, labels, paths = project
    known = frozenset(paths)
    sub = next(p for p in paths if p.startswith("sub/"))
    assert task_image({"id": 1, "data": {"path": "./" + sub}}, known, where="t") == (sub, None)
    assert task_image({"id": 1, "data": {"image": f"http://localhost:8000/{sub}"}}, known, where="t") == (sub, None)
    assert task_image({"id": 1, "data": {"img": f"/data/local-files/?d=photos/{sub}"}}, known, where="t") == (sub, None)
    assert task_image({"id": 1, "data": {"image": "http://h/x/" + sub.replace("/", "%2F")}}, known, where="t") == (sub, None)
    for bad in ({"id": 3, "data": {"path": "../../etc/passwd"}}, {"id": 3, "data": {"image": "http://h/nothing.png"}},
                {"id": 3}, "not a task", {"id": 3, "data": {"path": 5}}):
        path, error = task_image(bad, known, where="task #0")
        assert path is None and error
    _, client = backend_client(images, labels)
    answer = client.post("/predict", json={"tasks": [{"id": 5, "data": {"path": "nope.png"}}, {"id": 6, "data": {"path": paths[2]}}]})
    assert answer.status_code == 200
    first, second = answer.json()["results"]
    assert "result" not in first and "task 5: no image of --images matches it" in first["error"]
    assert second["result"][0]["value"] == {"choices": ["dark"]}


def test_a_class_the_project_does_not_offer_is_no_pre_label(project):
    images, labels, paths = project
    _, client = backend_client(images, labels)
    only_light = CONFIG.replace('<Choice value="dark"/>', "")
    result = client.post("/predict", json={"tasks": [{"id": 1, "data": {"path": paths[3]}}], "label_config": only_light})
    entry = result.json()["results"][0]
    assert entry["result"] == [] and entry["score"] is not None  # Label Studio would refuse a choice it does not offer
    seqgcn_names = client.post("/predict", json={"tasks": [{"id": 1, "data": {"path": paths[3]}}]}).json()["results"][0]
    assert seqgcn_names["result"][0]["from_name"] == "label" and seqgcn_names["result"][0]["to_name"] == "image"


def test_predict_before_the_first_model_is_503(project):
    images, labels, _ = project
    backend = MLBackend(ServeConfig(images=str(images), labels=str(labels)), query=FakeQuery())
    client = TestClient(make_app(backend))
    answer = client.post("/predict", json={"tasks": []})
    assert answer.status_code == 503 and "no model yet" in answer.json()["error"]
    assert client.post("/setup", json={"project": "1.1"}).json() == {"model_version": "seqgcn-untrained"}


# ------------------------------------------------------------------ /webhook
def test_webhook_appends_before_answering_and_replay_is_idempotent(project):
    images, labels, paths = project
    query = FakeQuery()
    backend, client = backend_client(images, labels, run=query, retrain_every=2)
    version = backend._model.version
    answer = client.post("/webhook", json=event("ANNOTATION_CREATED", paths[2], "light"))
    assert answer.status_code == 200 and answer.json()["added"] == 1
    assert labels_rows(labels)[-1] == (paths[2], "light")  # on file when the response came
    again = client.post("/webhook", json=event("ANNOTATION_CREATED", paths[2], "light"))  # a replay
    assert again.json()["added"] == 0 and again.json()["unchanged"] == 1
    assert len(labels_rows(labels)) == 4 and query.calls == 1
    client.post("/webhook", json=event("ANNOTATION_UPDATED", paths[3], "dark", task_id=8))  # the 2nd new answer
    assert backend.wait(30) and query.calls == 2
    health = client.get("/health").json()
    assert health["state"] == "idle" and health["labelled"] == 4 and health["classes"] == ["dark", "light"]
    assert health["model_version"] != version and health["last_retrain"] and health["pending_batch"] == 8
    assert health["refused"] == 0


def test_conflicting_answer_is_refused_reported_and_not_written(project, caplog):
    images, labels, paths = project
    backend, client = backend_client(images, labels)
    before = labels.read_bytes()
    answer = client.post("/webhook", json=event("ANNOTATION_UPDATED", paths[0], "light"))  # labelled dark on file
    assert answer.status_code == 409
    assert f"image {paths[0]!r} is already labelled 'dark'" in answer.json()["error"]
    assert labels.read_bytes() == before
    health = client.get("/health").json()
    assert health["refused"] == 1 and "already labelled 'dark'" in health["last_refusals"][0]["error"]
    assert "refused ANNOTATION_UPDATED" in caplog.text


def test_answers_missed_while_down_are_caught_up_at_start(project):
    images, labels, paths = project
    missed = [Answer(paths[4], "dark", "export task 1"), Answer(paths[0], "light", "export task 2"),  # 2nd conflicts
              Answer(paths[1], "light", "export task 3")]  # already on file
    backend = MLBackend(ServeConfig(images=str(images), labels=str(labels)), query=FakeQuery())
    backend.start(missed)
    assert backend.wait(30)
    assert labels_rows(labels)[1:] == [(paths[0], "dark"), (paths[1], "light"), (paths[4], "dark")]
    health = backend.health()
    assert health["refused"] == 1 and health["last_refusals"][0]["action"] == "CATCH_UP" and health["labelled"] == 3


def test_overwrite_applies_a_changed_answer(project):
    images, labels, paths = project
    _, client = backend_client(images, labels, overwrite=True)
    assert client.post("/webhook", json=event("ANNOTATION_UPDATED", paths[0], "light")).json()["added"] == 1
    assert labels_rows(labels)[-1] == (paths[0], "light")


def test_webhook_events_that_carry_no_answer(project):
    images, labels, paths = project
    _, client = backend_client(images, labels)
    before = labels.read_bytes()
    unknown = client.post("/webhook", json={"action": "SOMETHING_NEW", "project": {"id": 1}})
    assert unknown.status_code == 200 and unknown.json()["status"] == "ignored"
    assert client.post("/webhook", json={"action": "PROJECT_UPDATED", "project": {}}).json()["status"] == "ignored"
    skipped = client.post("/webhook", json=event("ANNOTATION_CREATED", paths[4], "dark", cancelled=True))
    assert skipped.json()["status"] == "ignored"
    deleted = client.post("/webhook", json={"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 3}]})
    assert deleted.status_code == 409 and "labels.csv is append-only" in deleted.json()["error"]
    no_action = client.post("/webhook", json={"annotation": {}})
    assert no_action.status_code == 400
    unknown_task = client.post("/webhook", json=event("ANNOTATION_CREATED", "gone.png", "dark"))
    assert unknown_task.status_code == 422 and "no image of --images matches it" in unknown_task.json()["error"]
    two = event("ANNOTATION_CREATED", paths[4], "dark")
    two["annotation"]["result"].append(two["annotation"]["result"][0])
    assert client.post("/webhook", json=two).status_code == 422  # two choices: not one answer
    assert labels.read_bytes() == before
    assert client.get("/health").json()["refused"] == 3  # the deletion and two answers; a request without an action is no answer


def test_bulk_annotations_created(project):
    images, labels, paths = project
    _, client = backend_client(images, labels)
    payload = {"action": "ANNOTATIONS_CREATED",
               "annotation": [annotation(21, "dark", ann_id=1), annotation(22, "light", ann_id=2)],
               "task": [{"id": 21, "data": {"path": paths[4]}}, {"id": 22, "data": {"path": paths[5]}}]}
    assert client.post("/webhook", json=payload).json()["added"] == 2
    assert labels_rows(labels)[-2:] == [(paths[4], "dark"), (paths[5], "light")]
    for tasks in ([], [{"id": 1}, {"id": 2}]):  # a task missing from the event: refused, never a crash
        bad = {"action": "ANNOTATIONS_CREATED", "annotation": [annotation(23, "dark")], "task": tasks}
        assert client.post("/webhook", json=bad).status_code == 400
    bad = {"action": "ANNOTATIONS_CREATED", "annotation": [{**annotation(23, "dark"), "task": {"x": 1}}], "task": [{}, {}]}
    assert client.post("/webhook", json=bad).status_code == 400


# ------------------------------------------------------------------ bad requests, auth
def test_malformed_requests(project):
    images, labels, _ = project
    _, client = backend_client(images, labels)
    for route in ("/predict", "/webhook", "/setup"):
        bad = client.post(route, content=b'{"tasks": [', headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"].startswith("malformed JSON")
    assert client.post("/predict", json=[1, 2]).status_code == 400
    assert client.post("/predict", json={"tasks": "x"}).status_code == 400
    assert client.get("/predict").status_code == 405
    assert client.get("/nothing").status_code == 404


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
events = st.fixed_dictionaries({"action": st.sampled_from(["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED",
                                                           "ANNOTATIONS_DELETED", "X"])},
                               optional={"annotation": json_values, "task": json_values, "annotations": json_values})


@pytest.fixture(scope="module")
def shared_client(tmp_path_factory):
    """One started backend for every example of a property test."""
    root = tmp_path_factory.mktemp("shared")
    paths = make_images(root / "images")
    (root / "labels.csv").write_text(f"path,label\n{paths[0]},dark\n{paths[1]},light\n")
    return backend_client(root / "images", root / "labels.csv")[1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=events, tasks=json_values)
def test_any_json_gets_an_answer_never_a_crash(shared_client, event, tasks):
    client = shared_client  # TestClient raises any exception the app lets through
    assert client.post("/webhook", json=event).status_code in (200, 400, 409, 422)
    assert client.post("/predict", json={"tasks": tasks, "label_config": tasks}).status_code in (200, 400)


def test_a_10_mb_body_is_refused(project):
    images, labels, _ = project
    _, client = backend_client(images, labels)
    big = b'{"tasks": [], "pad": "' + b"x" * (10 * 2**20) + b'"}'
    answer = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "exceeds the limit" in answer.json()["error"]

    def chunks():  # no Content-Length: counted while streaming
        yield big[: 2**20]
        for lo in range(2**20, len(big), 2**20):
            yield big[lo:lo + 2**20]

    assert client.post("/webhook", content=chunks()).status_code == 413


def test_basic_auth(project):
    images, labels, _ = project
    backend = MLBackend(ServeConfig(images=str(images), labels=str(labels)), query=FakeQuery())
    client = TestClient(make_app(backend, basic_auth=("ls", "s3cret")))
    answer = client.get("/health")
    assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Basic")
    assert client.get("/health", auth=("ls", "wrong")).status_code == 401
    assert client.get("/health", auth=("ls", "s3cret")).json()["status"] == "UP"


def test_cli_errors_are_one_line(tmp_path, capsys):
    images = tmp_path / "images"
    make_images(images, 4)
    (tmp_path / "bad.csv").write_text("p,l\n")
    (tmp_path / "broken.pt2").write_bytes(b"not a torch.export program")
    base = ["labelstudio", "serve", "--images", str(images), "--labels", str(tmp_path / "labels.csv")]
    for extra, message in ((["--budget", "0"], "--budget=0 must be a positive integer"),
                           (["--basic-auth", "nocolon"], "--basic-auth must be USER:PASSWORD"),
                           (["--method", "LearningLoss"], "alongside the learner); choose one of BADGE, BALD"),
                           (["--labels", str(images / "im00.png")], "outside the images folder"),
                           (["--labels", str(tmp_path / "bad.csv")], "header is 'p,l'"),
                           (["--encoder", str(tmp_path / "broken.pt2")], "broken.pt2"),
                           (["--encoder", str(tmp_path / "broken.pt2"), "--arch", "small_cnn"], "--arch sets the CNN learner")):
        assert main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("seqgcn: error: ") and message in err and err.count("\n") == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main([*base, "--port", str(taken.getsockname()[1])]) == 2
        assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


# ------------------------------------------------------------------ real training
TRAIN = dict(image_size=8, seed=3, threads=1, subset=None, sampler_params={"epochs": 5},
             learner_config=LearnerConfig.for_task("classification", arch="small_cnn", epochs=2, batch_size=4))


def test_served_batch_is_the_one_run_query_picks(project, one_torch_thread):
    images, labels, paths = project
    backend, client = backend_client(images, labels, run=run_query, budget=4, retrain_every=2, query=TRAIN)
    expected = run_query(images, labels, budget=4, method="CoreGCN", **TRAIN).picked
    tasks = [{"id": i, "data": {"path": p}} for i, p in enumerate(paths)]
    results = client.post("/predict", json={"tasks": tasks, "label_config": CONFIG}).json()["results"]
    order = sorted(range(len(paths)), key=lambda i: results[i]["score"])
    assert [paths[i] for i in order[:4]] == expected
    assert all(r["result"][0]["value"]["choices"][0] in ("dark", "light") for r in results)
    health = client.get("/health").json()
    assert set(health["last_retrain_seconds"]) >= {"load", "train", "features", "select", "predict", "total"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, payload: dict | None = None, timeout: float = 10) -> tuple[int, dict]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def start_server(images, labels, port: int, log: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "seqgcn.cli", "labelstudio", "serve", "--images", str(images), "--labels", str(labels),
               "--port", str(port), "--budget", "3", "--retrain-every", "2", "--arch", "small_cnn", "--epochs", "1",
               "--image-size", "8", "--gcn-epochs", "3", "--subset", "all", *extra]
    return subprocess.Popen(command, stdout=open(log, "a"), stderr=subprocess.STDOUT)


def wait_for_model(url: str, proc: subprocess.Popen, log: Path, *, not_version=None, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            code, health = http(url + "/health", timeout=2)
            if code == 200 and health["model_version"] not in (None, not_version) and health["state"] == "idle":
                return health
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"no model within {timeout} s; log: {log.read_text()[-2000:]}")


def test_sigkill_and_restart_lose_no_answer(project):
    images, labels, paths = project
    port, log = free_port(), project[1].parent / "serve.log"
    url = f"http://127.0.0.1:{port}"
    proc = start_server(images, labels, port, log)
    try:
        first = wait_for_model(url, proc, log)
        answers = [event("ANNOTATION_CREATED", paths[k], "dark" if k % 2 == 0 else "light", task_id=k) for k in (2, 3, 4)]
        for payload in answers:
            assert http(url + "/webhook", payload)[0] == 200
        os.kill(proc.pid, signal.SIGKILL)  # while the retrain the 2nd answer started is running
        proc.wait()
        assert labels_rows(labels)[-3:] == [(paths[2], "dark"), (paths[3], "light"), (paths[4], "dark")]

        proc = start_server(images, labels, port, log)
        health = wait_for_model(url, proc, log, not_version=first["model_version"])
        assert health["labelled"] == 5 and health["retrain_error"] is None
        for payload in answers:  # Label Studio retries: nothing appended twice
            code, answer = http(url + "/webhook", payload)
            assert code == 200 and answer["added"] == 0 and answer["unchanged"] == 1
        assert len(labels_rows(labels)) == 6
        code, predicted = http(url + "/predict", {"tasks": [{"id": 1, "data": {"path": paths[5]}}]})
        assert code == 200 and predicted["results"][0]["model_version"] == health["model_version"]
    finally:
        proc.kill()
        proc.wait()
