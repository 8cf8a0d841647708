"""`seqgcn run --preset`: resolution order, stored name, errors; the learner options and settings by task."""

from __future__ import annotations

import argparse
import json

import pytest

from seqgcn.cli import build_parser, main
from seqgcn.cli.run import add_run_arguments, config_from_args
from seqgcn.experiment import ExperimentConfig, run_experiment
from seqgcn.experiment.presets import available_presets, preset
from test_loop import FakeLearner, tiny_dataset


def parse(argv):
    p = argparse.ArgumentParser()
    add_run_arguments(p)
    return p.parse_args([str(a) for a in argv])


def test_preset_fills_in_its_fields():
    config, _ = config_from_args(parse(["--preset", "cifar10"]))
    for key, value in preset("cifar10").items():
        assert getattr(config, key) == value, key
    assert "preset" not in config.to_dict()  # the config holds the values the preset resolved to, not its name
    assert config.momentum == ExperimentConfig().momentum  # a field the preset leaves alone keeps its default


def test_resolution_order_defaults_preset_file_command_line(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("preset: cifar10\nbudget: 500\nlr: 0.01\ncycles: 4\n")
    config, _ = config_from_args(parse(["--config", f, "--budget", "200"]))
    assert config.dataset == "cifar10"
    assert config.budget == 200                       # command line > file
    assert config.lr == 0.01 and config.cycles == 4   # file > preset
    assert config.seed_size == 1000 and config.epochs == 200 and config.trials == 5  # preset > defaults
    assert config.seed == ExperimentConfig().seed     # defaults where nobody says otherwise

    # --preset on the command line replaces the file's preset; the file still overrides the preset's values
    config, _ = config_from_args(parse(["--config", f, "--preset", "cifar100"]))
    assert config.seed_size == 2000 and config.dataset == "cifar100"
    assert config.budget == 500 and config.lr == 0.01


def test_command_line_overrides_a_preset(tmp_path):
    config, _ = config_from_args(parse(["--preset", "icvl", "--epochs", "3", "--lr", "0.02", "--dataset", "rotated_digits"]))
    assert (config.epochs, config.lr, config.dataset) == (3, 0.02, "rotated_digits")
    assert (config.optimizer, config.budget, config.arch) == ("adam", 100, "deepprior")


def test_preset_values_are_in_the_results_and_resume_takes_them_back(tmp_path):
    config = ExperimentConfig.from_dict({"preset": "cifar10", "dataset": "tiny", "methods": ["Random"], "trials": 1,
                                         "cycles": 2, "seed_size": 10, "budget": 5, "subset": 30, "epochs": 1})
    out = tmp_path / "run"
    run_experiment(config, out, progress=False, dataset=tiny_dataset(), learner_factory=FakeLearner)
    for name in ("config.json", "results.json"):
        stored = json.loads((out / name).read_text())["config"]
        assert stored["arch"] == "resnet18" and stored["milestones"] == [160] and stored["budget"] == 5
    resumed, _ = config_from_args(parse(["--resume", out]))
    assert resumed == config


def one_line_error(capsys, *argv) -> str:
    code = main(["run", *map(str, argv)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1, err
    return err.strip()


def test_unknown_preset_is_a_one_line_error_listing_the_known_ones(capsys, tmp_path):
    known = ", ".join(available_presets())
    err = one_line_error(capsys, "--preset", "mnist", "--out", tmp_path / "x")
    assert err == f"seqgcn: error: command line: unknown preset 'mnist'; known presets: {known}"
    f = tmp_path / "c.toml"
    f.write_text('preset = "cifar11"\n')
    assert one_line_error(capsys, "--config", f).endswith(f"unknown preset 'cifar11'; known presets: {known}")
    assert not (tmp_path / "x").exists()


def test_learner_options_reach_the_config():
    config, _ = config_from_args(parse(["--arch", "vgg11", "--lr", "0.2", "--batch-size", "64", "--optimizer", "adam"]))
    assert (config.arch, config.lr, config.batch_size, config.optimizer) == ("vgg11", 0.2, 64, "adam")
    learner = config.learner_config("classification")
    assert (learner.arch, learner.lr, learner.batch_size, learner.optimizer) == ("vgg11", 0.2, 64, "adam")


def test_learner_settings_left_unset_are_chosen_by_task():
    d = ExperimentConfig()
    assert d.optimizer is None and d.lr is None
    cls, reg = d.learner_config("classification"), d.learner_config("regression")
    assert (cls.optimizer, cls.lr) == ("sgd", 0.05)
    assert (reg.optimizer, reg.lr) == ("adam", 1e-3)  # the paper's DeepPrior setting
    assert ExperimentConfig(lr=0.01).learner_config("regression").lr == 0.01  # an explicit lr is kept
    sgd = ExperimentConfig(optimizer="sgd").learner_config("regression")
    assert (sgd.optimizer, sgd.lr) == ("sgd", 0.05)  # an explicit optimizer is kept, lr follows it


def test_run_help_lists_every_option_with_a_help_text():
    from seqgcn.data.registry import available_datasets
    from seqgcn.learners import ARCHS

    run_parser = build_parser()._subparsers._group_actions[0].choices["run"]
    for action in run_parser._actions:
        assert action.help and len(action.help) > 15, action.option_strings
    text = " ".join(run_parser.format_help().split())
    for option in ("--preset", "--arch", "--lr", "--batch-size", "--optimizer", "--upper-bound", "--pool-dataset",
                   "--pool-data-dir", "--dataset", "--methods", "--resume", "--config"):
        assert option in text
    for name in [*available_presets(), *available_datasets(), *ARCHS]:
        assert name in text, name


@pytest.mark.parametrize("name", available_presets())
def test_every_preset_builds_a_valid_config(name):
    config = ExperimentConfig.from_dict({"preset": name})
    assert config.dataset == preset(name)["dataset"] and config == ExperimentConfig.from_preset(name)
    assert config.learner_config("classification").epochs == preset(name)["epochs"]
