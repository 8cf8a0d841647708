"""Learners: network shapes, batched augmentation, TorchLearner behaviour, errors.

Everything runs on the CPU with tiny sizes; the whole file takes well under a minute.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from seqgcn.data.base import Dataset
from seqgcn.learners import (
    VGG11,
    DeepPrior,
    Learner,
    LearnerConfig,
    ResNet18,
    SmallCNN,
    TorchLearner,
    build_learner,
    build_net,
    default_config,
)
from seqgcn.learners.torch_learner import augment_batch, crop_batch, flip_batch

CPU = dict(device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def _classification_set(n_train=60, n_test=30, side=8, channels=1, n_classes=3, seed=0) -> Dataset:
    """Class k = a bright 2×2 block at a class-specific place on noise: easy to learn."""
    rng = np.random.default_rng(seed)

    def make(n):
        y = np.arange(n) % n_classes
        x = rng.integers(0, 60, size=(n, channels, side, side)).astype(np.uint8)
        for i, k in enumerate(y):
            r, c = divmod(int(k) * 2, side)
            x[i, :, r:r + 2, c:c + 2] = 255
        return x, y.astype(np.int64)

    (xtr, ytr), (xte, yte) = make(n_train), make(n_test)
    return Dataset("toy", xtr, ytr, xte, yte, n_classes=n_classes, mean=(0.2,) * channels, std=(0.3,) * channels)


def _regression_set(n_train=40, n_test=20, side=16, n_points=2, point_dim=3, scale=10.0, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    k = n_points * point_dim

    def make(n):
        return (rng.integers(0, 255, size=(n, 1, side, side)).astype(np.uint8),
                rng.uniform(-1, 1, size=(n, k)).astype(np.float32))

    (xtr, ytr), (xte, yte) = make(n_train), make(n_test)
    return Dataset("toy_reg", xtr, ytr, xte, yte, task="regression", mean=(0.5,), std=(0.3,),
                   point_dim=point_dim, target_scale=scale, metric_unit="mm")


# ---------------------------------------------------------------- network shapes

@pytest.mark.parametrize("side, feature_dim", [(8, 128), (8, 64), (16, 128)])
def test_small_cnn_shapes(side, feature_dim):
    net = SmallCNN(1, 10, side, feature_dim=feature_dim)
    out, feat = net(torch.randn(2, 1, side, side))
    assert out.shape == (2, 10) and feat.shape == (2, feature_dim) and net.feature_dim == feature_dim


@pytest.mark.parametrize("channels", [3, 1])
def test_resnet18_shapes_and_stages(channels):
    net = ResNet18(in_channels=channels, n_outputs=10).eval()
    x = torch.randn(2, channels, 32, 32)
    with torch.no_grad():
        out, feat = net(x)
        out2, feat2, stages = net.forward_stages(x)
    assert out.shape == (2, 10) and feat.shape == (2, 512) and net.feature_dim == 512
    assert [tuple(s.shape[1:]) for s in stages] == [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(feat, feat2)


def test_resnet18_is_the_cifar_variant():
    net = ResNet18()
    stem = net.stem[0]
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    assert 11_000_000 < sum(p.numel() for p in net.parameters()) < 11_300_000  # CIFAR ResNet-18: 11.17 M


@pytest.mark.parametrize("channels, side", [(3, 32), (1, 28)])
def test_vgg11_shapes(channels, side):
    net = VGG11(channels, 10).eval()
    with torch.no_grad():
        out, feat = net(torch.randn(2, channels, side, side))
    assert out.shape == (2, 10) and feat.shape == (2, 512)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 8


def test_deepprior_shapes():
    net = DeepPrior(n_outputs=48, in_size=128).eval()
    with torch.no_grad():
        out, feat = net(torch.randn(2, 1, 128, 128))
    assert out.shape == (2, 48) and feat.shape == (2, 1024)


# ---------------------------------------------------------------- a few training steps per net

def _losses(net, x, y, loss_fn, steps=3, lr=1e-3):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    losses = []
    for _ in range(steps):
        out, _ = net(x)
        loss = loss_fn(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@pytest.mark.parametrize("make, shape", [
    (lambda: SmallCNN(1, 3, 8), (8, 1, 8, 8)),
    (lambda: ResNet18(3, 3), (4, 3, 32, 32)),
    (lambda: ResNet18(1, 3), (4, 1, 16, 16)),
    (lambda: VGG11(3, 3), (4, 3, 32, 32)),
])
def test_classifier_loss_decreases(make, shape):
    torch.manual_seed(0)
    net = make()
    x, y = torch.randn(*shape), torch.arange(shape[0]) % 3
    losses = _losses(net, x, y, F.cross_entropy)
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_deepprior_loss_decreases():
    torch.manual_seed(0)
    net = DeepPrior(n_outputs=6, in_size=64, dropout=0.0)
    x, y = torch.randn(4, 1, 64, 64), torch.rand(4, 6)
    losses = _losses(net, x, y, F.mse_loss, steps=4)
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


# ---------------------------------------------------------------- batched augmentation: known answers

def test_crop_at_padding_offset_is_identity():
    x = torch.rand(3, 2, 8, 8)
    torch.testing.assert_close(crop_batch(x, torch.full((3, 2), 4), padding=4), x, rtol=0, atol=0)


def test_crop_offsets_are_per_sample():
    x = torch.rand(2, 3, 8, 8)
    out = crop_batch(x, torch.tensor([[0, 0], [8, 2]]), padding=4)
    assert out.shape == x.shape
    # sample 0 moved down-right by 4: a zero border on top/left, the image's top-left 4×4 in the corner
    torch.testing.assert_close(out[0, :, 4:, 4:], x[0, :, :4, :4], rtol=0, atol=0)
    assert (out[0, :, :4, :] == 0).all() and (out[0, :, :, :4] == 0).all()
    # sample 1: window rows 8..15, cols 2..9 of the padded image = rows 4..11, cols -2..5 of the image
    torch.testing.assert_close(out[1, :, :4, 2:], x[1, :, 4:, :6], rtol=0, atol=0)
    assert (out[1, :, 4:, :] == 0).all() and (out[1, :, :, :2] == 0).all()


def test_flip_flips_exactly_the_masked_samples():
    x = torch.rand(3, 1, 4, 5)
    out = flip_batch(x, torch.tensor([True, False, True]))
    torch.testing.assert_close(out[0], x[0].flip(-1), rtol=0, atol=0)
    torch.testing.assert_close(out[1], x[1], rtol=0, atol=0)
    torch.testing.assert_close(out[2, 0, :, 0], x[2, 0, :, 4], rtol=0, atol=0)


def test_augment_batch_shape_and_generator_determinism():
    x = torch.rand(16, 3, 32, 32)
    a = augment_batch(x, "crop_flip", torch.Generator().manual_seed(3))
    b = augment_batch(x, "crop_flip", torch.Generator().manual_seed(3))
    c = augment_batch(x, "crop_flip", torch.Generator().manual_seed(4))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)


# ---------------------------------------------------------------- TorchLearner

def test_learner_is_deterministic_and_leaves_global_rng_alone():
    ds = _classification_set()
    cfg = LearnerConfig(epochs=2, batch_size=16, lr=0.05, **CPU)
    rng_before = torch.get_rng_state()
    a, b = TorchLearner(ds, cfg, seed=5), TorchLearner(ds, cfg, seed=5)
    for pa, pb in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    assert not torch.equal(a.model.head.weight, TorchLearner(ds, cfg, seed=6).model.head.weight)
    idx = np.arange(0, 60, 2)
    a.fit(idx, ds.y_train[idx])
    b.fit(idx, ds.y_train[idx])
    for pa, pb in zip(a.model.state_dict().values(), b.model.state_dict().values(), strict=True):
        assert torch.equal(pa, pb)
    np.testing.assert_array_equal(a.features(np.arange(10)), b.features(np.arange(10)))
    assert torch.equal(torch.get_rng_state(), rng_before)
    # reset brings back the initial weights of the seed
    a.reset(5)
    torch.testing.assert_close(a.model.head.weight, TorchLearner(ds, cfg, seed=5).model.head.weight)


def test_learner_fits_a_toy_classification_set():
    ds = _classification_set()
    learner = build_learner(ds, LearnerConfig(epochs=25, batch_size=16, lr=0.05, milestones=(20,), **CPU))
    assert isinstance(learner, Learner) and learner.arch == "small_cnn" and learner.augment == "none"
    stats = learner.fit(np.arange(ds.n_train), ds.y_train)
    assert set(stats) >= {"loss", "epochs", "seconds"} and stats["epochs"] == 25 and np.isfinite(stats["loss"])
    assert (learner.predict(ds.x_train) == ds.y_train).mean() >= 0.95
    assert learner.metric_name == "accuracy" and learner.higher_is_better
    assert 0.0 <= learner.evaluate() <= 1.0
    feats = learner.features(np.array([3, 1, 3]))
    assert feats.shape == (3, 128) and feats.dtype == np.float32
    np.testing.assert_allclose(feats[0], feats[2])
    assert learner.features(np.array([], dtype=np.int64)).shape == (0, 128)


def test_fit_epochs_override_and_progress_bar(capsys):
    ds = _classification_set(n_train=20, n_test=4)
    learner = TorchLearner(ds, LearnerConfig(epochs=50, batch_size=8, progress=True, **CPU))
    stats = learner.fit(np.arange(20), ds.y_train, epochs=2)
    assert stats["epochs"] == 2 and stats["steps"] == 2 * 3 and stats["images"] == 40
    assert "epoch" in capsys.readouterr().err


def test_learner_on_digits_reaches_90_percent():
    digits = pytest.importorskip("seqgcn.data.digits")
    ds = digits.load_digits()
    learner = build_learner(ds, LearnerConfig(epochs=8, milestones=(6,), **CPU))
    learner.fit(np.arange(ds.n_train), ds.y_train)
    assert learner.evaluate() > 0.9


def test_regression_metric_name_units_and_known_answer():
    ds = _regression_set()
    learner = build_learner(ds, LearnerConfig(epochs=3, batch_size=16, optimizer="adam", lr=1e-3, **CPU))
    assert learner.metric_name == "mean joint error (mm)" and not learner.higher_is_better
    stats = learner.fit(np.arange(ds.n_train), ds.y_train)
    assert np.isfinite(stats["loss"]) and np.isfinite(learner.evaluate())
    assert learner.predict(ds.x_test[:3]).shape == (3, 6)

    class Zero(nn.Module):  # predicts the origin for every point
        def forward(self, x):
            return torch.zeros(len(x), 6), torch.zeros(len(x), 4)

    learner.model = Zero()
    expected = np.linalg.norm(ds.y_test.reshape(-1, 2, 3), axis=2).mean() * 10.0
    np.testing.assert_allclose(learner.evaluate(), expected, rtol=1e-5)
    np.testing.assert_allclose(learner.evaluate_all()["mse"], (ds.y_test ** 2).mean() * 100.0, rtol=1e-5)


def test_deepprior_learner_with_dropout_is_deterministic():
    ds = _regression_set(n_train=12, n_test=4, side=64)
    cfg = LearnerConfig(epochs=2, batch_size=6, optimizer="adam", lr=1e-3, **CPU)
    a, b = TorchLearner(ds, cfg, seed=2), TorchLearner(ds, cfg, seed=2)
    assert a.arch == "deepprior"
    sa, sb = a.fit(np.arange(12), ds.y_train), b.fit(np.arange(12), ds.y_train)
    assert np.isfinite(sa["loss"]) and sa["loss"] == sb["loss"]
    assert torch.equal(a.model.fc2.weight, b.model.fc2.weight)
    assert a.features(np.arange(3)).shape == (3, 1024)


def test_regression_loss_is_mean_over_points_of_squared_error():
    ds = _regression_set(n_points=2, point_dim=3)
    learner = TorchLearner(ds, LearnerConfig(**CPU))
    out, y = torch.zeros(2, 6), torch.tensor([[1.0, 2, 2, 0, 0, 0], [0, 0, 0, 0, 3, 4]])
    # per-sample point errors: [9, 0] and [0, 25] -> mean over points and samples = 34 / 4
    assert float(learner._loss(out, y).mean()) == pytest.approx(34 / 4)


def test_point_dim_one_metric_name():
    ds = _regression_set(n_points=1, point_dim=1)
    assert TorchLearner(ds, LearnerConfig(**CPU)).metric_name == "mean error (mm)"


@pytest.mark.parametrize("make, arch, augment", [
    (lambda: _classification_set(n_train=4, n_test=2, side=8), "small_cnn", "none"),
    (lambda: _regression_set(n_train=4, n_test=2, side=16), "small_cnn", "none"),
    (lambda: _classification_set(n_train=4, n_test=2, side=32, channels=3), "resnet18", "crop_flip"),
    (lambda: _classification_set(n_train=4, n_test=2, side=28, channels=1), "resnet18", "none"),
    (lambda: _regression_set(n_train=4, n_test=2, side=64), "deepprior", "none"),
])
def test_build_learner_auto_choices(make, arch, augment):
    learner = build_learner(make(), LearnerConfig(**CPU))
    assert learner.arch == arch and learner.augment == augment
    assert learner.feature_dim == {"small_cnn": 128, "resnet18": 512, "deepprior": 1024}[arch]


def test_explicit_vgg11_and_crop_flip_training_run():
    ds = _classification_set(n_train=6, n_test=2, side=32, channels=3)
    learner = build_learner(ds, LearnerConfig(arch="vgg11", epochs=1, batch_size=3, **CPU))
    stats = learner.fit(np.arange(6), ds.y_train)
    assert learner.augment == "crop_flip" and stats["steps"] == 2 and np.isfinite(stats["loss"])
    assert learner.features(np.arange(2)).shape == (2, 512)


def test_one_set_of_learner_defaults_those_of_seqgcn_run():
    from seqgcn.experiment.config import ExperimentConfig

    cls = default_config(_classification_set())
    assert cls == ExperimentConfig().learner_config("classification") == LearnerConfig()
    assert (cls.optimizer, cls.lr, cls.epochs, cls.batch_size, cls.device) == ("sgd", 0.05, 30, 32, "cpu")
    reg = default_config(_regression_set())
    assert reg == ExperimentConfig().learner_config("regression")
    assert (reg.optimizer, reg.lr) == ("adam", 1e-3)
    assert cls.resolved_milestones() == (24,)  # lr ÷10 at 80 % of the epochs, as the paper's 160 of 200


def test_build_net_seed_is_explicit():
    a = build_net("small_cnn", in_channels=1, n_outputs=3, image_size=8, seed=1)
    b = build_net("small_cnn", in_channels=1, n_outputs=3, image_size=8, seed=1)
    assert torch.equal(a.head.weight, b.head.weight)


# ---------------------------------------------------------------- errors

def test_error_messages():
    ds = _classification_set()
    learner = TorchLearner(ds, LearnerConfig(**CPU))
    with pytest.raises(ValueError, match="indices is empty"):
        learner.fit(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match=r"index 60, outside \[0, 59\]"):
        learner.fit(np.array([0, 60]), np.array([0, 1]))
    with pytest.raises(ValueError, match="repeated"):
        learner.fit(np.array([1, 1]), np.array([0, 0]))
    with pytest.raises(ValueError, match=r"targets must be 2 integer class labels"):
        learner.fit(np.array([0, 1]), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match=r"label 7, outside \[0, 2\]"):
        learner.fit(np.array([0, 1]), np.array([0, 7]))
    with pytest.raises(ValueError, match=r"x must have shape \(n, 1, 8, 8\)"):
        learner.predict(np.zeros((2, 1, 9, 9), np.uint8))
    with pytest.raises(ValueError, match="arch='alexnet' is not one of 'auto', 'small_cnn', 'resnet18', 'vgg11', 'deepprior'"):
        build_learner(ds, LearnerConfig(arch="alexnet", **CPU))
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        build_learner(ds, LearnerConfig(optimizer="rmsprop", **CPU))
    with pytest.raises(ValueError, match="augment='mixup'"):
        build_learner(ds, LearnerConfig(augment="mixup", **CPU))
    with pytest.raises(ValueError, match="device='tpu'"):
        build_learner(ds, LearnerConfig(device="tpu"))
    reg = _regression_set()
    with pytest.raises(ValueError, match=r"targets must have shape \(2, 6\)"):
        TorchLearner(reg, LearnerConfig(**CPU)).fit(np.array([0, 1]), np.zeros((2, 5), np.float32))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_gpu():
    with pytest.raises(ValueError, match="torch.cuda.is_available"):
        build_learner(_classification_set(), LearnerConfig(device="cuda"))
