"""Every `seqgcn run` option, given on the command line, reaches the recorded config (issue 11, item 2)."""

from __future__ import annotations

import json

import pytest

from seqgcn.cli import build_parser, main
from seqgcn.cli.run import config_from_args
from seqgcn.experiment import ExperimentConfig

# option -> (command-line words, the config field it sets, the value recorded); none equals its default
OPTIONS = {
    "--preset": (["icvl"], "milestones", ()),  # a field no other option sets
    "--dataset": (["rotated_digits"], "dataset", "rotated_digits"),
    "--data-dir": (["/some/where"], "data_dir", "/some/where"),
    "--methods": (["Random", "UncertainGCN"], "methods", ("Random", "UncertainGCN")),
    "--trials": (["2"], "trials", 2),
    "--cycles": (["4"], "cycles", 4),
    "--seed-size": (["11"], "seed_size", 11),
    "--budget": (["6"], "budget", 6),
    "--subset": (["77"], "subset", 77),
    "--device": (["auto"], "device", "auto"),
    "--seed": (["9"], "seed", 9),
    "--arch": (["vgg11"], "arch", "vgg11"),
    "--epochs": (["3"], "epochs", 3),
    "--batch-size": (["16"], "batch_size", 16),
    "--optimizer": (["adam"], "optimizer", "adam"),
    "--lr": (["0.25"], "lr", 0.25),
    "--pool-dataset": (["folder"], "pool_dataset", "folder"),
    "--pool-data-dir": (["/pool/dir"], "pool_data_dir", "/pool/dir"),
    "--upper-bound": ([], "upper_bound", True),
    "--save-features": ([], "save_features", True),
    "--threads": (["2"], "threads", 2),
    "--gcn-epochs": (["5"], "gcn_epochs", 5),
    "--normalization": (["row"], "normalization", "row"),
    "--margin-rule": (["farthest"], "margin_rule", "farthest"),
    "--margin": (["0.2"], "margin", 0.2),
    "--encoder": (["enc.onnx"], "encoder", "enc.onnx"),
    "--encoder-input-size": (["64"], "encoder_input_size", 64),
    "--encoder-channel-order": (["bgr"], "encoder_channel_order", "bgr"),
    "--encoder-mean": (["0.4,0.5,0.6"], "encoder_mean", (0.4, 0.5, 0.6)),
    "--encoder-std": (["0.2"], "encoder_std", (0.2,)),
    "--head-hidden": (["32"], "head_hidden", 32),
}
# the backend's options decide how the jobs run, not the results: they reach the runner, never the config
RUNNER_OPTIONS = {
    "--cpus-per-job": (["2"], "cpus_per_job", 2.0),
    "--gpus-per-job": (["0.5"], "gpus_per_job", 0.5),
    "--ray-address": (["auto"], "address", "auto"),
}


def parse_run(argv):
    return build_parser().parse_args(["run", *map(str, argv)])


def test_the_table_covers_every_option_of_seqgcn_run():
    run_parser = build_parser()._subparsers._group_actions[0].choices["run"]
    options = {a.option_strings[0] for a in run_parser._actions if a.option_strings and a.dest != "help"}
    assert options == set(OPTIONS) | set(RUNNER_OPTIONS) | {"--out", "--resume", "--config", "--backend", "--workers"}


@pytest.mark.parametrize("option", sorted(RUNNER_OPTIONS))
def test_each_backend_option_reaches_the_runner_and_not_the_config(option):
    pytest.importorskip("ray")
    from seqgcn.cli.run import runner_from_args

    words, name, value = RUNNER_OPTIONS[option]
    args = parse_run(["--backend", "ray", option, *words])
    assert getattr(runner_from_args(args), name) == value
    assert config_from_args(args)[0] == ExperimentConfig()


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_each_option_reaches_the_config(option):
    words, name, value = OPTIONS[option]
    assert getattr(ExperimentConfig(), name) != value  # else the test could not tell
    config, _ = config_from_args(parse_run([option, *words]))
    assert getattr(config, name) == value


def test_all_options_at_once_and_the_file_values_they_override(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("subset: 300\ntrials: 5\nupper_bound: false\nout: from-file\n")
    argv = ["--config", f, "--out", tmp_path / "run"]
    for option, (words, _, _) in OPTIONS.items():
        argv += [option, *words]
    config, out = config_from_args(parse_run(argv))
    assert {name: getattr(config, name) for _, name, _ in OPTIONS.values()} == {name: v for _, name, v in OPTIONS.values()}
    assert out == str(tmp_path / "run")


@pytest.mark.parametrize("word", ["all", "ALL", "none"])
def test_subset_all_on_the_command_line_means_the_whole_pool(word, tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("subset = 300\n")
    assert config_from_args(parse_run(["--subset", word]))[0].subset is None
    assert config_from_args(parse_run(["--config", f, "--subset", word]))[0].subset is None  # overrides the file
    assert config_from_args(parse_run(["--preset", "cifar10", "--subset", word]))[0].subset is None  # and a preset


def test_subset_all_is_what_config_json_records(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--methods", "Random", "--trials", "1", "--cycles", "2", "--seed-size", "10", "--budget", "5",
                 "--epochs", "1", "--subset", "all", "--seed", "4", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    for name in ("config.json", "results.json"):
        stored = json.loads((out / name).read_text())["config"]
        assert stored["subset"] is None and stored["seed"] == 4 and stored["methods"] == ["Random"]
