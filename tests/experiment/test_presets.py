import pytest

from seqgcn.experiment.presets import available_presets, preset


def test_paper_protocols():
    c10 = preset("cifar10")
    assert (c10["seed_size"], c10["budget"], c10["cycles"], c10["subset"], c10["trials"]) == (1000, 1000, 10, 10_000, 5)
    assert (c10["epochs"], c10["batch_size"], c10["lr"], c10["milestones"]) == (200, 128, 0.1, (160,))
    assert preset("cifar100")["budget"] == 2000 and preset("cifar100")["seed_size"] == 2000
    icvl = preset("icvl")
    assert (icvl["budget"], icvl["subset"], icvl["optimizer"], icvl["lr"], icvl["arch"]) == (100, 1600, "adam", 1e-3, "deepprior")
    assert set(available_presets()) == {"cifar10", "cifar100", "fashionmnist", "svhn", "icvl"}


def test_preset_is_a_copy():
    preset("cifar10")["budget"] = 1
    assert preset("cifar10")["budget"] == 1000


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'mnist'; known presets: cifar10, cifar100"):
        preset("mnist")
