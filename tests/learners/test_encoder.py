"""Encoders from files (ONNX, .pt2): settings from metadata and options, equal embeddings, one-line errors; the head."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_encoder_models import Not2D, TinyCNN, export_onnx, export_pt2

from seqgcn.checks import InputError
from seqgcn.learners import Learner
from seqgcn.learners.encoder import IMAGENET_MEAN, load_encoder
from seqgcn.learners.head import HeadConfig, HeadLearner

META = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("encoders")
    return {"pt2": export_pt2(TinyCNN(), folder / "cnn.pt2", metadata=META), "folder": folder}


def pixels(n=5, c=3, side=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, c, side, side), dtype=np.uint8)


def reference(x: np.ndarray) -> np.ndarray:
    """The TinyCNN in eager torch, on the same preparation (scale, mean 0.5, std 0.25)."""
    with torch.no_grad():
        return TinyCNN()((torch.from_numpy(x).float() / 255 - 0.5) / 0.25).numpy()


def test_pt2_embeddings_equal_the_eager_network_and_metadata_is_read(files):
    enc = load_encoder(files["pt2"], batch_size=2)  # 5 images in batches of 2: the last batch is short
    assert (enc.kind, enc.dim, enc.settings.input_size, enc.settings.mean) == ("pt2", 16, 32, (0.5, 0.5, 0.5))
    x = pixels()
    np.testing.assert_allclose(enc.embed(x), reference(x), rtol=1e-4, atol=1e-5)


def test_onnx_gives_the_same_embeddings_as_pt2(files):
    pytest.importorskip("onnxruntime")
    path = export_onnx(TinyCNN(), files["folder"] / "cnn.onnx", metadata={"mean": "0.5,0.5,0.5", "std": META["std"]})
    enc = load_encoder(path)
    assert enc.kind == "onnx" and enc.settings.std == (0.25, 0.25, 0.25)
    x = pixels()
    np.testing.assert_allclose(enc.embed(x), reference(x), rtol=1e-4, atol=1e-5)


def test_options_override_metadata_and_change_the_cache_key(files):
    plain = load_encoder(files["pt2"])
    other = load_encoder(files["pt2"], mean=IMAGENET_MEAN, channel_order="bgr")
    assert other.settings.mean == IMAGENET_MEAN and other.settings.channel_order == "bgr"
    assert plain.sha256 == other.sha256 and plain.key != other.key


def test_grey_and_smaller_images_are_repeated_and_resized(files):
    enc = load_encoder(files["pt2"])
    grey = pixels(3, c=1, side=8)
    out = enc.embed(grey)
    assert out.shape == (3, 16)
    np.testing.assert_allclose(out, enc.embed(np.repeat(grey, 3, axis=1)), rtol=1e-6)


def test_a_fixed_batch_program_runs_in_padded_batches(tmp_path):
    path = export_pt2(TinyCNN(), tmp_path / "fixed.pt2", dynamic_batch=False, metadata=META)
    enc = load_encoder(path, batch_size=64)
    assert enc.batch_size == 2  # the exported batch
    x = pixels(5)
    np.testing.assert_allclose(enc.embed(x), reference(x), rtol=1e-4, atol=1e-5)


def test_feature_maps_are_average_pooled(tmp_path):
    enc = load_encoder(export_pt2(TinyCNN(maps=True), tmp_path / "maps.pt2", metadata=META))
    x = pixels(2)
    np.testing.assert_allclose(enc.embed(x), reference(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("content, match", [(b"not a model", "cannot be read as a torch.export program"),
                                            (None, "does not exist")])
def test_a_corrupt_or_missing_pt2_is_one_line(tmp_path, content, match):
    path = tmp_path / "broken.pt2"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=match):
        load_encoder(path)


def test_a_corrupt_onnx_is_one_line(tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00garbage")
    with pytest.raises(InputError, match="cannot be read as an ONNX model"):
        load_encoder(path)


def test_a_model_that_fails_at_the_asked_size_is_one_line(tmp_path):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 32 * 32, 8))
    path = tmp_path / "flat.onnx"
    torch.onnx.export(net.eval(), (torch.zeros(2, 3, 32, 32),), str(path), dynamo=False, input_names=["images"],
                      dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}})  # sizes free in the file only
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[2].dim_param == "height"
    with pytest.raises(InputError, match=r"does not say its input size .* give --encoder-input-size"):
        load_encoder(path)
    assert load_encoder(path, input_size=32).dim == 8
    with pytest.raises(InputError, match=r"fails on a \(2, 3, 64, 64\) input .* set --encoder-input-size"):
        load_encoder(path, input_size=64)


def test_onnx_without_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"anything")
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(InputError, match=r"needs onnxruntime: pip install 'seqgcn\[encoder\]'"):
        load_encoder(path)


def test_unknown_suffix_wrong_input_size_and_not_2d_output(files, tmp_path):
    with pytest.raises(InputError, match=r"\.onnx\) or a torch.export program \(\.pt2\)"):
        load_encoder(tmp_path / "model.pth")
    with pytest.raises(InputError, match="--encoder-input-size=64 does not match .* takes 32×32"):
        load_encoder(files["pt2"], input_size=64)
    with pytest.raises(InputError, match=r"outputs shape \(2, 2, 4, 4, 1\); expected embeddings \(n, d\)"):
        load_encoder(export_pt2(Not2D(), tmp_path / "odd.pt2"))
    with pytest.raises(InputError, match="--encoder-mean=.* must be 3 finite"):
        load_encoder(files["pt2"], mean=(0.1, 0.2))


# --------------------------------------------------------------------------- the head
def blobs(n_per=30, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (3, d))
    x = np.concatenate([c + rng.normal(0, 1, (n_per, d)) for c in centres]).astype(np.float32)  # (90, d)
    y = np.repeat(np.arange(3), n_per)
    return x, y


@pytest.mark.parametrize("hidden", [0, 32])
def test_head_is_a_learner_that_separates_blobs(hidden):
    x, y = blobs()
    test = np.arange(0, 90, 3)
    train = np.setdiff1d(np.arange(90), test)
    head = HeadLearner(x, x[test], y[test], n_outputs=3, config=HeadConfig(hidden=hidden), seed=1)
    assert isinstance(head, Learner)
    stats = head.fit(train, y[train])
    assert stats["loss"] < 0.2 and head.evaluate() == 1.0
    p = head.probs(test)
    assert p.shape == (30, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(head.predict(x[test]), y[test])
    np.testing.assert_array_equal(head.features([4, 2]), x[[4, 2]])  # the frozen embeddings, as given
    assert [s.shape[1] for s in head.stage_features([0, 1])] == ([8, 32] if hidden else [8])
    out = head.outputs(test)
    np.testing.assert_array_equal(out["probs"], p)
    np.testing.assert_array_equal(out["features"], x[test])
    passes = head.dropout_passes(test, passes=4, dropout=0.5, seed=7)
    assert passes.shape == (4, 30, 3)
    np.testing.assert_array_equal(passes, head.dropout_passes(test, passes=4, dropout=0.5, seed=7))
    np.testing.assert_allclose(passes.sum(2), 1, rtol=1e-5)


def test_head_reset_is_reproducible_and_changes_with_the_seed():
    x, y = blobs()
    head = HeadLearner(x, x[:0], y[:0], n_outputs=3, config=HeadConfig(epochs=5))
    runs = []
    for seed in (3, 3, 4):
        head.reset(seed)
        head.fit(np.arange(0, 90, 7), y[::7])
        runs.append(head.probs(np.arange(90)))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_head_refuses_bad_input():
    x, y = blobs()
    head = HeadLearner(x, x[:3], y[:3], n_outputs=3)
    with pytest.raises(InputError, match="outside"):
        head.fit(np.array([0, 90]), np.array([0, 1]))
    with pytest.raises(InputError, match="integer labels in"):
        head.fit(np.array([0, 1]), np.array([0, 5]))
    with pytest.raises(InputError, match="NaN"):
        HeadLearner(np.full((3, 2), np.nan), np.zeros((0, 2)), [], n_outputs=2)
