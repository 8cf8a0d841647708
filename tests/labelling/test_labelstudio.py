"""`seqgcn labelstudio push|pull` against a real Label Studio server started here on localhost.

The server (PyPI ``label-studio``) lives in its own virtual environment, because
it pins many packages: `make test` creates ``.venv-labelstudio`` and migrates a
template database there once (``.venv-labelstudio/seqgcn-template``), which this
test copies so that the server starts without running its migrations again.
The executable is ``$SEQGCN_LABEL_STUDIO``, else ``.venv-labelstudio/bin/label-studio``,
else ``label-studio`` on PATH; without one the test is skipped. Images travel
inside the tasks as PNG data URIs, so the server needs no file serving.

One server serves every test here, the push/pull round trip and `seqgcn labelstudio
serve` as its ML backend: a project, tasks, the backend connected through the SDK,
annotations posted through the API (each one reaches the backend as a webhook), a
retrain, then the predictions Label Studio stored and the Data Manager's order by
score; last, an answer given while the backend is down comes back through the
catch-up at start. For a backend on the same machine the server starts with
``ML_BLOCK_LOCAL_IP=false`` and ``SSRF_PROTECTION_ENABLED=false`` (Label Studio
refuses local addresses by default).
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("label_studio_sdk")

from seqgcn.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
TOKEN = "seqgcn-test-token-0123456789"
START_TIMEOUT = 240  # seconds; a migrated template makes it ~10-20 s
LOCAL_BACKEND = {"ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false"}  # an ML backend on localhost


def server_executable() -> str | None:
    for candidate in (os.environ.get("SEQGCN_LABEL_STUDIO"), str(REPO / ".venv-labelstudio/bin/label-studio"),
                      shutil.which("label-studio")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    exe = server_executable()
    if exe is None:
        pytest.skip("no Label Studio server: `make test` installs it into .venv-labelstudio (or set SEQGCN_LABEL_STUDIO)")
    data = tmp_path_factory.mktemp("label-studio")
    template = Path(exe).resolve().parents[1] / "seqgcn-template" / "label_studio.sqlite3"
    if template.is_file():
        shutil.copy(template, data / template.name)
    port = free_port()
    env = {**os.environ, "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",
           "LABEL_STUDIO_BASE_DATA_DIR": str(data), "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", **LOCAL_BACKEND}
    log = open(data / "server.log", "w")
    proc = subprocess.Popen(
        [exe, "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port), "--data-dir", str(data),
         "--username", "seqgcn@example.com", "--password", "seqgcn-test", "--user-token", TOKEN,
         "--enable-legacy-api-token", "--log-level", "ERROR"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"Label Studio exited with code {proc.returncode}; log: {(data / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"Label Studio did not answer on {url} within {START_TIMEOUT} s")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and any worker it started
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_push_annotate_pull(server, tmp_path, capsys):
    from label_studio_sdk import LabelStudio

    images = tmp_path / "images"
    images.mkdir()
    for k in range(4):
        Image.fromarray(np.full((6, 6, 3), 60 * k, dtype=np.uint8)).save(images / f"im{k}.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("path,label\nim3.png,dark\n")
    batch = tmp_path / "batch.csv"
    batch.write_text("path,label\nim0.png,\nim1.png,\nim2.png,\n")
    common = ["--url", server, "--api-key", TOKEN, "--project", "seqgcn test", "--images", str(images), "--labels", str(labels)]

    assert main(["labelstudio", "push", str(batch), *common, "--classes", "light"]) == 0
    assert "3 new task(s)" in capsys.readouterr().out
    assert main(["labelstudio", "push", str(batch), *common]) == 0  # again: nothing new
    assert "0 new task(s), 3 already there" in capsys.readouterr().out

    client = LabelStudio(base_url=server, api_key=TOKEN)
    project = next(p for p in client.projects.list() if p.title == "seqgcn test")
    assert '<Choice value="dark"/>' in project.label_config and '<Choice value="light"/>' in project.label_config
    tasks = {t.data["path"]: t for t in client.tasks.list(project=project.id)}
    assert sorted(tasks) == ["im0.png", "im1.png", "im2.png"]
    assert tasks["im0.png"].data["image"].startswith("data:image/png;base64,")
    for path, label in (("im0.png", "dark"), ("im1.png", "light")):  # the person answers two of three
        client.annotations.create(id=tasks[path].id, result=[
            {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}])

    assert main(["labelstudio", "pull", *common]) == 0
    assert "imported 2 label(s)" in capsys.readouterr().out
    with open(labels, newline="") as fh:
        assert [tuple(r) for r in csv.reader(fh)] == [("path", "label"), ("im3.png", "dark"), ("im0.png", "dark"), ("im1.png", "light")]

    client.annotations.create(id=tasks["im0.png"].id, result=[  # a second annotator disagrees: refused, nothing written
        {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["light"]}}])
    before = labels.read_bytes()
    assert main(["labelstudio", "pull", *common]) == 2
    assert "image 'im0.png' is answered twice with different labels" in capsys.readouterr().err
    assert labels.read_bytes() == before


def test_unreachable_server_is_one_line(tmp_path, capsys):
    code = main(["labelstudio", "pull", "--url", f"http://127.0.0.1:{free_port()}", "--api-key", "x",
                 "--images", str(tmp_path), "--labels", str(tmp_path / "labels.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("seqgcn: error: cannot reach Label Studio at http://127.0.0.1:") and err.count("\n") == 1


def test_label_studio_drives_the_backend(server, tmp_path, capsys):
    """`seqgcn labelstudio serve` as this server's ML backend (module docstring)."""
    pytest.importorskip("starlette")
    pytest.importorskip("uvicorn")
    from label_studio_sdk import LabelStudio
    from labelling.test_mlbackend import FakeQuery, make_images, start_server, wait_for_model

    from seqgcn.labelling import labelstudio
    from seqgcn.labelling.exports import label_config, label_studio_tasks
    from seqgcn.labelling.mlbackend import MLBackend, ServeConfig

    images = tmp_path / "images"
    paths = make_images(images, 16)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"path,label\n{paths[0]},dark\n{paths[1]},light\n")
    port, log = free_port(), tmp_path / "serve.log"
    backend_url = f"http://127.0.0.1:{port}"
    title = "seqgcn backend"
    # --budget 3 --retrain-every 2, small CNN, seed 0; each new model's version set on the project
    proc = start_server(images, labels, port, log, "--url", server, "--api-key", TOKEN, "--project", title)
    try:
        first = wait_for_model(backend_url, proc, log)
        client = LabelStudio(base_url=server, api_key=TOKEN)
        project = client.projects.create(title=title, label_config=label_config(["dark", "light"]))
        client.projects.import_tasks(id=project.id, request=label_studio_tasks(images, paths))
        client.ml.create(project=project.id, url=backend_url, title="seqgcn", auto_update=True, is_interactive=False)
        tasks = {t.data["path"]: t for t in client.tasks.list(project=project.id)}
        assert sorted(tasks) == paths

        answered = {paths[2]: "dark", paths[3]: "light"}  # the 2nd answer starts a retrain
        for path, label in answered.items():
            client.annotations.create(id=tasks[path].id, result=[
                {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}])
        with open(labels, newline="") as fh:  # on file as soon as Label Studio has answered the API call
            rows = [tuple(r) for r in csv.reader(fh)]
        assert rows == [("path", "label"), (paths[0], "dark"), (paths[1], "light"), *answered.items()]
        health = wait_for_model(backend_url, proc, log, not_version=first["model_version"])
        assert health["labelled"] == 4 and health["refused"] == 0 and health["pending_batch"] == 3
        assert health["sync_error"] is None and client.projects.get(id=project.id).model_version == health["model_version"]

        client.actions.create(id="retrieve_tasks_predictions", project=project.id,
                              selected_items={"all": True, "excluded": []})
        predictions = [p for p in client.predictions.list(project=project.id) if p.model_version == health["model_version"]]
        by_task = {p.task: p for p in predictions}
        assert set(by_task) == {t.id for t in tasks.values()}  # every task has a prediction of the new model
        assert all(p.result[0]["value"]["choices"][0] in ("dark", "light") for p in predictions)
        order = sorted(paths, key=lambda path: by_task[tasks[path].id].score)

        out = tmp_path / "batch.csv"  # what `seqgcn query` picks from the same labels, seed and options
        assert main(["query", "--images", str(images), "--labels", str(labels), "--out", str(out), "--budget", "3",
                     "--arch", "small_cnn", "--epochs", "1", "--image-size", "8", "--gcn-epochs", "3", "--subset", "all"]) == 0
        capsys.readouterr()
        with open(out, newline="") as fh:
            batch = [row["path"] for row in csv.DictReader(fh)]
        assert order[:3] == batch
        view = client.views.create(project=project.id, data={"title": "by score", "ordering": ["tasks:predictions_score"]})
        in_data_manager = [t.data["path"] for t in client.tasks.list(project=project.id, view=view.id)]
        assert in_data_manager[:3] == batch  # the Data Manager sorted by the Prediction score column

        proc.kill()  # down: Label Studio's webhook for the next answer fails, and it does not retry
        proc.wait()
        client.annotations.create(id=tasks[paths[4]].id, result=[
            {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": ["dark"]}}])
        assert len(labels.read_text().splitlines()) == 5
        backend = MLBackend(ServeConfig(images=str(images), labels=str(labels)), query=FakeQuery())
        backend.start(labelstudio.pull(client, title))  # what `serve --url --api-key` does at start: a catch-up
        backend.wait(30)
        with open(labels, newline="") as fh:
            assert [tuple(r) for r in csv.reader(fh)][-1] == (paths[4], "dark")
        assert backend.health()["refused"] == 0
    finally:
        proc.kill()
        proc.wait()
