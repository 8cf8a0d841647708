"""Config values checked by type and range where they enter; damaged job checkpoints and .npy headers (issue 11, item 6)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from seqgcn.cli import main
from seqgcn.experiment import ExperimentConfig, run_experiment
from seqgcn.experiment.jobs import Job, job_path
from test_loop import FakeLearner, tiny_dataset

# (key, bad value, the message it must give); every field of ExperimentConfig appears at least once
BAD = [
    ("preset", 5, r"preset=5 must be a preset name"),
    ("dataset", 3, r"dataset=3 must be a non-empty name"),
    ("data_dir", ["a"], r"data_dir=\['a'\] must be a non-empty name \(or left out\)"),
    ("pool_dataset", "", r"pool_dataset='' must be a non-empty name"),
    ("pool_data_dir", 1.5, r"pool_data_dir=1.5 must be a non-empty name"),
    ("upper_bound", "yes", r"upper_bound='yes' must be true or false"),
    ("save_features", 1, r"save_features=1 must be true or false"),
    ("methods", [], r"methods=\[\] must be a non-empty list of method names"),
    ("methods", [1, 2], r"methods=\[1, 2\] must be a non-empty list of method names"),
    ("methods", ["Random", "Random"], r"methods=\['Random', 'Random'\] names a method twice"),
    ("trials", 0, r"trials=0 must be a positive integer"),
    ("trials", 2.5, r"trials=2.5 must be a positive integer"),
    ("cycles", "3", r"cycles='3' must be a positive integer"),
    ("seed_size", True, r"seed_size=True must be a positive integer"),
    ("budget", -4, r"budget=-4 must be a positive integer"),
    ("subset", 0, r"subset=0 must be a positive integer or 'all' for the whole pool"),
    ("subset", "some", r"subset='some' must be a positive integer or 'all'"),
    ("seed", -1, r"seed=-1 must be an integer >= 0"),
    ("device", "tpu", r"device='tpu' is not supported; use 'cpu', 'cuda', 'cuda:N' or 'auto'"),
    ("threads", 0, r"threads=0 must be a positive integer"),
    ("trials", 10**8, r"trials=100000000 must be at most 10,000,000"),
    ("arch", "resnet50", r"arch='resnet50' is not one of 'auto', 'small_cnn', "),
    ("epochs", [3], r"epochs=\[3\] must be a positive integer"),
    ("batch_size", 0, r"batch_size=0 must be a positive integer"),
    ("optimizer", "rmsprop", r"optimizer='rmsprop' is not one of 'sgd', 'adam' \(or left out for the default\)"),
    ("lr", "inf", r"lr=inf must be a finite number > 0"),
    ("lr", "nan", r"lr=nan must be a finite number > 0"),
    ("lr", 0, r"lr=0.0 must be a finite number > 0"),
    ("lr", [0.1], r"lr=\[0.1\] must be a finite number > 0"),
    ("momentum", 1, r"momentum=1.0 must be a number in \[0, 1\)"),
    ("weight_decay", -1e-4, r"weight_decay=-0.0001 must be a finite number >= 0"),
    ("milestones", "abc", r"milestones='abc' must be a list of increasing positive integers"),
    ("milestones", 5, r"milestones=5 must be a list of increasing positive integers"),
    ("milestones", [0], r"milestones=\[0\] must be a list of increasing positive integers"),
    ("milestones", [20, 10], r"milestones=\[20, 10\] must be a list of increasing"),
    ("milestones", [1.5], r"milestones=\[1.5\] must be a list of increasing"),
    ("gamma", [1, 2], r"gamma=\[1, 2\] must be a number in \(0, 1\]"),
    ("gamma", 0, r"gamma=0.0 must be a number in \(0, 1\]"),
    ("gamma", 10, r"gamma=10.0 must be a number in \(0, 1\]"),
    ("augment", "flip", r"augment='flip' is not one of 'auto', 'none', 'crop', 'crop_flip'"),
    ("gcn_epochs", 0, r"gcn_epochs=0 must be a positive integer"),
    ("normalization", "sym", r"normalization='sym' is not one of 'column', 'row'"),
    ("margin_rule", "middle", r"margin_rule='middle' is not one of 'closest', 'farthest'"),
    ("margin", 1.5, r"margin=1.5 must be a number in \[0, 1\]"),
    ("encoder", 3, r"encoder=3 must be a non-empty name"),
    ("encoder_input_size", 0, r"encoder_input_size=0 must be a positive integer"),
    ("encoder_channel_order", "rbg", r"encoder_channel_order='rbg' is not one of 'rgb', 'bgr'"),
    ("encoder_mean", [0.5, "x"], r"encoder_mean=\[0.5, 'x'\] must be a list of 1 or 3 finite numbers"),
    ("encoder_std", [0.2, 0.0, 0.2], r"encoder_std=\[0.2, 0.0, 0.2\] must be a list of 1 or 3 finite numbers > 0"),
    ("head_hidden", -1, r"head_hidden=-1 must be an integer >= 0"),
]


def test_the_table_names_every_field():
    assert {key for key, _, _ in BAD} == set(ExperimentConfig.__dataclass_fields__) | {"preset"}


def test_a_preset_is_a_source_of_values_not_a_field():
    with pytest.raises(TypeError):
        ExperimentConfig(preset="cifar10")  # once accepted: ran digits and recorded cifar10
    config = ExperimentConfig.from_preset("cifar10", budget=500)
    assert (config.dataset, config.arch, config.budget, config.epochs) == ("cifar10", "resnet18", 500, 200)


def test_device_and_margin_follow_the_same_rule_as_the_learner_and_the_sampler():
    assert ExperimentConfig.from_dict({"device": "cuda:1"}).device == "cuda:1"  # resolve_device takes cuda:N too
    assert ExperimentConfig.from_dict({"margin": 1.0}).margin == 1.0  # UncertainGCN takes s_margin in [0, 1]


def test_a_sampler_option_that_no_method_takes_is_refused():
    with pytest.raises(ValueError, match=r"^config: option gcn_epochs=5 applies to none of the methods \(Random, CoreSet\)"):
        ExperimentConfig.from_dict({"methods": ["Random", "CoreSet"], "gcn_epochs": 5})
    assert ExperimentConfig.from_dict({"methods": ["Random", "CoreGCN"], "gcn_epochs": 5}).gcn_epochs == 5


@pytest.mark.parametrize("key, value, message", BAD)
def test_from_dict_refuses_a_bad_value_naming_field_value_and_expectation(key, value, message):
    with pytest.raises(ValueError, match=rf"^config: {message}") as info:
        ExperimentConfig.from_dict({key: value})
    assert "\n" not in str(info.value)


def test_from_dict_accepts_the_edges_of_each_range():
    config = ExperimentConfig.from_dict({"momentum": 0, "weight_decay": 0, "gamma": 1, "milestones": [], "lr": "1e-3",
                                         "subset": "all", "seed": 0, "margin": 0.5})
    assert (config.momentum, config.gamma, config.milestones, config.lr, config.subset) == (0.0, 1.0, (), 1e-3, None)
    # a milestone past `epochs` never fires (as in torch's MultiStepLR): allowed, so `--preset cifar10 --epochs 5` works
    assert ExperimentConfig.from_dict({"preset": "cifar10", "epochs": 5}).milestones == (160,)


def test_a_direct_config_is_checked_by_run_experiment(tmp_path):
    config = ExperimentConfig(dataset="tiny", methods=("Random",), trials=1, cycles=2, seed_size=10, budget=5, subset=30,
                              epochs=1, milestones="abc")
    with pytest.raises(ValueError, match=r"^milestones='abc' must be a list of increasing positive integers"):
        run_experiment(config, tmp_path / "x", progress=False, dataset=tiny_dataset(), learner_factory=FakeLearner)
    assert not (tmp_path / "x").exists()


def one_line_error(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-1", "0"])
def test_bad_lr_on_the_command_line_names_the_command_line(value, capsys, tmp_path):
    err = one_line_error(capsys, ["run", f"--lr={value}", "--out", tmp_path / "x"])
    assert err == f"seqgcn: error: command line: lr={float(value)!r} must be a finite number > 0"
    assert not (tmp_path / "x").exists()


def test_the_message_names_the_config_file_only_when_the_file_is_wrong(capsys, tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("milestones: abc\n")
    err = one_line_error(capsys, ["run", "--config", f, "--out", tmp_path / "x"])
    assert err.startswith(f"seqgcn: error: config file '{f}': milestones='abc' must be a list of increasing positive")
    f.write_text("milestones: [10, 20]\ngamma: 0.5\n")
    err = one_line_error(capsys, ["run", "--config", f, "--epochs", "0", "--out", tmp_path / "x"])
    assert err == "seqgcn: error: command line: epochs=0 must be a positive integer"
    f.write_text("gamma: [1, 2]\n")
    err = one_line_error(capsys, ["run", "--config", f, "--out", tmp_path / "x"])
    assert err == f"seqgcn: error: config file '{f}': gamma=[1, 2] must be a number in (0, 1] (the lr is multiplied by it at each milestone)"
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- damaged run directories
TINY = ExperimentConfig(dataset="tiny", methods=("Random", "CoreSet"), trials=1, cycles=3, seed_size=10, budget=5,
                        subset=30, epochs=1, seed=3)


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    run_experiment(TINY, out, progress=False, dataset=tiny_dataset(), learner_factory=FakeLearner)
    return out


@pytest.fixture
def finished_run(finished_template, tmp_path):
    """A copy of one finished run per test (each test damages its own): the run is made once per module."""
    return Path(shutil.copytree(finished_template, tmp_path / "run"))


def resume(out):
    return run_experiment(TINY, out, resume=True, progress=False, dataset=tiny_dataset(), learner_factory=FakeLearner)


def test_an_intact_checkpoint_resumes(finished_run):
    assert len(resume(finished_run).records) == 6


def in_progress(c: dict, state) -> dict:
    """The finished job file `c` as it was after its second of three cycles, with `state` as its pool state."""
    return {**c, "records": c["records"][:2], "next_cycle": 2, "done": False, "state": state}


# each edit turns the finished job file of (trial 0, Random) into a damaged one; per-job checkpoints since issue 8
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: [], r"has format 'list'; this seqgcn reads format 2"),
        (lambda c: {"format": 2}, r"is damaged: it belongs to trial None None, not trial 0 'Random'"),
        (lambda c: {**c, "trial": 1}, r"is damaged: it belongs to trial 1 'Random', not trial 0 'Random'"),
        (lambda c: {**c, "records": {"a": 1}}, r"is damaged: 'records' is not a list of records"),
        (lambda c: {**c, "records": [{"method": "Random"}]}, r"is damaged: a record lacks its method, trial, cycle"),
        (lambda c: {**c, "records": [{**r, "method": "Nope"} for r in c["records"]]}, r"a record lacks its method"),
        (lambda c: {**c, "next_cycle": "2"}, r"is damaged: 'next_cycle' is '2' \(done: True\), not a cycle in \[1, 3\]"),
        (lambda c: {**c, "next_cycle": 7}, r"'next_cycle' is 7 \(done: True\), not a cycle in \[1, 3\]"),
        (lambda c: {**c, "records": c["records"][:2]}, r"it holds 2 records where 'next_cycle' says 3 cycles are done"),
        (lambda c: {**c, "done": False}, r"is damaged: 'done' is False after 3 of 3 cycles"),
        (lambda c: in_progress(c, None), r"is damaged: 'state' is not the pool state of the job in progress"),
        (lambda c: {k: v for k, v in c.items() if k != "attempts"}, r"is damaged: 'attempts' is not a list"),
        (lambda c: in_progress(c, {"pool": 7}), r"is damaged: its pool state cannot be restored"),
    ],
)
def test_a_job_checkpoint_of_the_wrong_shape_is_a_one_line_error(finished_run, edit, message):
    path = job_path(finished_run, Job(0, "Random"))
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(ValueError, match=message) as info:
        resume(finished_run)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    if "is damaged" in message:
        assert str(info.value).endswith("; delete it to rerun that job")


@pytest.mark.parametrize("stored", ["[]", '{"config": 5}', '{"config": {"trials": "x"}}', '{"nothing": 1}'])
def test_a_config_json_of_the_wrong_shape_is_a_one_line_error(tmp_path, stored, capsys):
    (tmp_path / "config.json").write_text(stored)
    err = one_line_error(capsys, ["run", "--resume", tmp_path])
    assert err.startswith(f"seqgcn: error: ") and str(tmp_path / "config.json") in err


# --------------------------------------------------------------------------- .npy headers
def test_npy_header_claiming_more_data_than_the_file_holds(tmp_path, capsys):
    data = np.ones((4, 3), np.float32)
    np.save(tmp_path / "f.npy", data)
    (tmp_path / "short.npy").write_bytes((tmp_path / "f.npy").read_bytes()[:-8])  # the last two floats cut off
    with open(tmp_path / "huge.npy", "wb") as fh:  # a header for 4e12 rows, then the 12 floats
        np.lib.format.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (4_000_000_000_000, 3)})
        fh.write(data.tobytes())
    (tmp_path / "l.txt").write_text("0\n")
    for name, shape, claimed, held in (("huge.npy", "(4000000000000, 3)", 48_000_000_000_000, 48), ("short.npy", "(4, 3)", 48, 40)):
        err = one_line_error(capsys, ["select", "--features", tmp_path / name, "--labelled", tmp_path / "l.txt",
                                      "--budget", "1", "--method", "Random"])
        assert err == (f"seqgcn: error: features file '{tmp_path / name}' is truncated or corrupt: its header claims "
                       f"shape {shape} of float32 ({claimed} bytes) but the file holds {held} bytes of data")
