"""`seqgcn labelstudio serve` as the ML backend of a real Label Studio 1.23.2 (the server of test_labelstudio.py).

The Label Studio fixture is test_labelstudio.py's, started with the two settings
a backend on the same machine needs (Label Studio refuses local addresses by
default): ``ML_BLOCK_LOCAL_IP=false`` and ``SSRF_PROTECTION_ENABLED=false``.
The path: a project, tasks, the backend connected through the SDK, annotations
posted through the API (each one reaches the backend as a webhook), a retrain,
then the predictions Label Studio stored and the Data Manager's order by score;
last, an answer given while the backend is down comes back through the catch-up at start.
"""

from __future__ import annotations

import csv
import os

import pytest

pytest.importorskip("label_studio_sdk")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from labelling.test_labelstudio import TOKEN, server  # noqa: E402,F401  (the Label Studio fixture)
from labelling.test_mlbackend import FakeQuery, free_port, make_images, start_server, wait_for_model  # noqa: E402

from seqgcn.cli import main  # noqa: E402
from seqgcn.labelling import labelstudio  # noqa: E402
from seqgcn.labelling.exports import label_config, label_studio_tasks  # noqa: E402
from seqgcn.labelling.mlbackend import MLBackend, ServeConfig  # noqa: E402

LOCAL_BACKEND = {"ML_BLOCK_LOCAL_IP": "false", "SSRF_PROTECTION_ENABLED": "false"}


@pytest.fixture(scope="module", autouse=True)
def local_backend_allowed():
    """Set before `server` starts Label Studio (autouse fixtures of a scope come first), restored after."""
    before = {k: os.environ.get(k) for k in LOCAL_BACKEND}
    os.environ.update(LOCAL_BACKEND)
    yield
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def test_label_studio_drives_the_backend(server, tmp_path, capsys):
    from label_studio_sdk import LabelStudio

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
