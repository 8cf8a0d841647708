"""`seqgcn select`: features in, global indices out; every bad input is one `seqgcn: error:` line and exit 2."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from seqgcn.cli import main
from seqgcn.samplers import available_samplers, get_sampler, sampler_class
from seqgcn.samplers.base import FeatureSampler

N, M = 60, 8
LABELLED = [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]  # 10 labelled, 50 unlabelled
CANDIDATES = [1, 2, 3, 7, 11, 12, 13, 33, 41, 59]  # a strict subset of the unlabelled (D_S)
METHODS = [m for m in available_samplers() if issubclass(sampler_class(m), FeatureSampler)]  # the others are refused (test_baselines.py)
GCN_METHODS = [m for m in METHODS if get_sampler(m).needs_labelled]
PLAIN_METHODS = [m for m in METHODS if not get_sampler(m).needs_labelled]
ERROR_PREFIX = "seqgcn: error: "


def fast(method: str) -> list[str]:
    """Options that keep a GCN method fast; nothing for the others (they refuse GCN-only options)."""
    return ["--gcn-epochs", "5"] if method in GCN_METHODS else []


def write_lines(path: Path, values) -> str:
    path.write_text("".join(f"{v}\n" for v in values))
    return str(path)


@pytest.fixture
def files(tmp_path):
    """Valid inputs in tmp_path/in; tmp_path/out is an empty folder for --out."""
    d = tmp_path / "in"
    d.mkdir()
    (tmp_path / "out").mkdir()
    feats = np.random.default_rng(0).random((N, M), dtype=np.float32)  # non-negative
    np.save(d / "f.npy", feats)
    return {
        "dir": d,
        "features": str(d / "f.npy"),
        "labelled": write_lines(d / "lab.txt", LABELLED),
        "candidates": write_lines(d / "cand.txt", CANDIDATES),
        "empty": write_lines(d / "empty.txt", []),
        "out": tmp_path / "out" / "picked.txt",
    }


def select_args(files, *, method="Random", budget=5, features=None, labelled=None, extra=()):
    return [
        "select",
        "--features", features or files["features"],
        "--labelled", labelled or files["labelled"],
        "--budget", str(budget),
        "--method", method,
        *fast(method),
        *extra,
    ]


def parse_picks(text: str) -> list[int]:
    lines = text.splitlines()
    assert all(re.fullmatch(r"\d+", line) for line in lines), text
    return [int(line) for line in lines]


def check_picks(picks, budget, *, pool):
    assert len(picks) == budget
    assert len(set(picks)) == budget  # unique
    assert set(picks) <= set(pool)
    assert not set(picks) & set(LABELLED)


UNLABELLED = sorted(set(range(N)) - set(LABELLED))


# --------------------------------------------------------------------------- happy path
def test_out_file_gets_what_stdout_got(files, capsys):
    argv = select_args(files, method="Random", budget=7, extra=["--seed", "3"])
    assert main(argv) == 0
    picks = parse_picks(capsys.readouterr().out)
    out = files["out"]
    assert main(argv + ["--out", str(out)]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    assert parse_picks(out.read_text()) == picks  # same seed, same picks, same order
    assert sorted(os.listdir(out.parent)) == ["picked.txt"]  # no temporary left behind


def test_error_is_one_line_and_writes_nothing(files, capsys):
    assert main(select_args(files, budget=0, extra=["--out", str(files["out"])])) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == "seqgcn: error: budget=0 must be a positive integer\n"
    assert not files["out"].exists()


@pytest.mark.parametrize("method", METHODS)
def test_each_method_in_process(files, method, capsys):
    assert main(select_args(files, method=method, budget=6)) == 0
    cap = capsys.readouterr()
    assert cap.err == ""
    check_picks(parse_picks(cap.out), 6, pool=UNLABELLED)


@pytest.mark.parametrize("method", METHODS)
def test_candidates_restrict_the_picks(files, method, capsys):
    args = select_args(files, method=method, budget=4, extra=["--candidates", files["candidates"], "--out", str(files["out"])])
    assert main(args) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == ""
    check_picks(parse_picks(files["out"].read_text()), 4, pool=CANDIDATES)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_output(files, method, capsys):
    runs = []
    for _ in range(2):
        assert main(select_args(files, method=method, budget=5, extra=["--seed", "11"])) == 0
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1] and runs[0]


def test_different_seed_changes_random(files, capsys):
    outs = set()
    for seed in range(4):
        assert main(select_args(files, budget=10, extra=["--seed", str(seed)])) == 0
        outs.add(capsys.readouterr().out)
    assert len(outs) > 1


def test_budget_equal_to_all_candidates(files, capsys):
    assert main(select_args(files, budget=len(CANDIDATES), extra=["--candidates", files["candidates"]])) == 0
    assert sorted(parse_picks(capsys.readouterr().out)) == CANDIDATES


@pytest.mark.parametrize("method", PLAIN_METHODS)
def test_empty_labelled_accepted_by_plain_methods(files, method, capsys):
    assert main(select_args(files, method=method, budget=5, labelled=files["empty"])) == 0
    picks = parse_picks(capsys.readouterr().out)
    assert len(picks) == 5 and len(set(picks)) == 5 and all(0 <= p < N for p in picks)


def test_labelled_file_comments_and_blank_lines(files, capsys):
    lab = files["dir"] / "lab_comments.txt"
    lab.write_text("# labelled so far\n\n" + "".join(f"  {i}  \n" for i in LABELLED) + "\n")
    assert main(select_args(files, budget=5, labelled=str(lab), extra=["--seed", "2"])) == 0
    with_comments = capsys.readouterr().out
    assert main(select_args(files, budget=5, extra=["--seed", "2"])) == 0
    assert capsys.readouterr().out == with_comments


@pytest.mark.parametrize("method", GCN_METHODS)
def test_gcn_options_and_diagnostics(files, method, capsys):
    extra = ["--normalization", "row", "--diagnostics", "--device", "cpu"]
    if hasattr(get_sampler(method), "margin_rule"):
        extra += ["--margin-rule", "farthest"]
    assert main(select_args(files, method=method, budget=5, extra=extra)) == 0
    cap = capsys.readouterr()
    check_picks(parse_picks(cap.out), 5, pool=UNLABELLED)
    for key in ("final_train_loss", "eval_loss", "mean_score_labelled", "mean_score_unlabelled",
                "discrimination_accuracy", "n_nodes", "gcn_seconds"):
        assert re.search(rf"^{key}: \S+$", cap.err, re.M), cap.err
    assert re.search(rf"^n_nodes: {N}$", cap.err, re.M)


def test_diagnostics_off_by_default(files, capsys):
    assert main(select_args(files, method="CoreGCN", budget=3)) == 0
    assert capsys.readouterr().err == ""


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for word in ("select", "run", "--version", "--help"):
        assert word in out


def test_select_help_mentions_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["select", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for opt in ("--features", "--labelled", "--budget", "--method", "--out", "--candidates", "--seed",
                "--normalization", "--margin-rule", "--gcn-epochs", "--margin", "--device", "--diagnostics"):
        assert opt in out, opt
    flat = " ".join(out.split())  # argparse wraps lines
    for method in METHODS:
        assert method in flat


# --------------------------------------------------------------------------- bad input
class Boom:
    """Unpickling this would create the file `target`: proves pickled data is never loaded."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _bad_features(kind, d: Path) -> str:
    path = d / f"bad_{kind}.npy"
    rng = np.random.default_rng(1)
    good = rng.random((N, M), dtype=np.float32)
    if kind == "nan":
        good[3, 2] = np.nan
        np.save(path, good)
    elif kind == "inf":
        good[7, 0] = -np.inf
        np.save(path, good)
    elif kind == "1d":
        np.save(path, good[:, 0])
    elif kind == "3d":
        np.save(path, good.reshape(N, 2, M // 2))
    elif kind == "few_rows":
        np.save(path, good[:30])
    elif kind == "no_rows":
        np.save(path, good[:0])
    elif kind == "text":
        path.write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    elif kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "npz":
        path = d / "bad.npz"
        np.savez(path, features=good)
    elif kind == "truncated":
        np.save(path, good)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "pickle":
        np.save(path, np.array([Boom(str(d / "PWNED")), None], dtype=object), allow_pickle=True)
    elif kind == "strings":
        np.save(path, np.array([["a", "b"], ["c", "d"]]))
    elif kind == "complex":
        np.save(path, good.astype(np.complex64) + 1j)
    elif kind == "missing":
        path = d / "nope.npy"
    elif kind == "directory":
        path = d / "a_dir.npy"
        path.mkdir()
    else:  # pragma: no cover
        raise AssertionError(kind)
    return str(path)


FEATURE_ERRORS = {
    "nan": r"features contains NaN or inf in 1 row\(s\) \(first: row 3\); remove or impute them before selecting",
    "inf": r"features contains NaN or inf in 1 row\(s\) \(first: row 7\); remove .*",
    "1d": r"features must be 2-D \(n_samples, n_features\); got ndim=1 with shape \(60,\)",
    "3d": r"features must be 2-D \(n_samples, n_features\); got ndim=3 with shape \(60, 2, 4\)",
    "few_rows": r"labelled holds index 45, outside \[0, 29\]: features has only 30 rows",
    "no_rows": r"features must have at least one row and one column; got shape \(0, 8\)",
    "text": r"features file '.*bad_text\.npy' is not a \.npy file \(no NumPy header\); save the \(N, m\) array with numpy\.save",
    "empty_file": r"features file '.*bad_empty_file\.npy' is not a \.npy file \(no NumPy header\).*",
    "npz": r"features file '.*bad\.npz' is not a \.npy file \(no NumPy header\).*",
    "truncated": r"features file '.*bad_truncated\.npy' is truncated or corrupt: its header claims shape \(\d+, \d+\) of float\d+ \(\d+ bytes\) but the file holds \d+ bytes of data",
    "pickle": r"cannot read features file '.*bad_pickle\.npy' as a \.npy array: .*allow_pickle=False",
    "strings": r"features must hold numbers; got dtype <U1",
    "complex": r"features must hold real numbers; got dtype complex64",
    "missing": r"features file '.*nope\.npy' does not exist",
    "directory": r"cannot read features file '.*a_dir\.npy' as a \.npy array: .+",
}


def run_bad(args, out: Path, capsys) -> str:
    """Run main(), check the error contract, return the message after the prefix."""
    out_dir_before = sorted(os.listdir(out.parent)) if out.parent.is_dir() else None
    rc = main(args + ["--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 2, cap
    assert cap.out == ""
    assert cap.err.startswith(ERROR_PREFIX), cap.err
    assert cap.err.endswith("\n") and cap.err.count("\n") == 1, cap.err  # one line
    assert "Traceback" not in cap.err
    assert not out.exists()
    if out_dir_before is not None:
        assert sorted(os.listdir(out.parent)) == out_dir_before  # no temporary either
    return cap.err[len(ERROR_PREFIX):-1]


@pytest.mark.parametrize("kind", sorted(FEATURE_ERRORS))
def test_bad_features(files, kind, capsys):
    path = _bad_features(kind, files["dir"])
    msg = run_bad(select_args(files, features=path), files["out"], capsys)
    assert re.fullmatch(FEATURE_ERRORS[kind], msg), msg
    assert not (files["dir"] / "PWNED").exists()


LABELLED_ERRORS = {
    "duplicate": ([0, 5, 3, 5], r"labelled holds index 5 more than once; each index may appear only once"),
    "too_big": ([0, 60], r"labelled holds index 60, outside \[0, 59\]: features has only 60 rows"),
    "negative": ([0, -1, 4], r"labelled holds index -1, outside \[0, 59\]: features has only 60 rows"),
    "float": ([0, "1.5"], r"labelled file '.*lab_float\.txt' line 2: '1\.5' is not an integer index"),
    "word": (["zero"], r"labelled file '.*lab_word\.txt' line 1: 'zero' is not an integer index"),
    "huge": ([0, 10**30], r"labelled file '.*lab_huge\.txt' line 2: index 10{30} is far too large to be a row of the features"),
}


@pytest.mark.parametrize("kind", sorted(LABELLED_ERRORS))
def test_bad_labelled(files, kind, capsys):
    values, pattern = LABELLED_ERRORS[kind]
    lab = write_lines(files["dir"] / f"lab_{kind}.txt", values)
    msg = run_bad(select_args(files, labelled=lab), files["out"], capsys)
    assert re.fullmatch(pattern, msg), msg


def test_missing_and_unreadable_index_files(files, capsys):
    missing = str(files["dir"] / "absent.txt")
    msg = run_bad(select_args(files, labelled=missing), files["out"], capsys)
    assert re.fullmatch(r"labelled file '.*absent\.txt' does not exist", msg), msg
    msg = run_bad(select_args(files, extra=["--candidates", missing]), files["out"], capsys)
    assert re.fullmatch(r"candidates file '.*absent\.txt' does not exist", msg), msg
    # a binary file given as the labelled list
    msg = run_bad(select_args(files, labelled=files["features"]), files["out"], capsys)
    assert re.fullmatch(r"cannot read labelled file '.*f\.npy': .*can't decode.*", msg), msg


@pytest.mark.parametrize(
    "budget, extra, pattern",
    [
        (0, [], r"budget=0 must be a positive integer"),
        (-3, [], r"budget=-3 must be a positive integer"),
        (51, [], r"budget=51 exceeds the 50 unlabelled candidates in the pool"),
        (11, ["--candidates", "CAND"], r"budget=11 exceeds the 10 unlabelled candidates in the pool"),
    ],
)
def test_bad_budget(files, budget, extra, pattern, capsys):
    extra = [files["candidates"] if e == "CAND" else e for e in extra]
    msg = run_bad(select_args(files, budget=budget, extra=extra), files["out"], capsys)
    assert re.fullmatch(pattern, msg), msg


def test_candidates_must_be_unlabelled(files, capsys):
    cand = write_lines(files["dir"] / "cand_bad.txt", [1, 2, 10])
    msg = run_bad(select_args(files, extra=["--candidates", cand]), files["out"], capsys)
    assert re.fullmatch(r"candidates holds 1 labelled item\(s\) \(first: 10\); candidates must be unlabelled", msg), msg


@pytest.mark.parametrize("method", GCN_METHODS)
def test_empty_labelled_refused_by_gcn_methods(files, method, capsys):
    msg = run_bad(select_args(files, method=method, labelled=files["empty"]), files["out"], capsys)
    assert re.fullmatch(
        rf"labelled is empty, but {method} needs at least one labelled item; label a random seed set first", msg
    ), msg


def test_unknown_method_lists_the_known_ones(files, capsys):
    msg = run_bad(select_args(files, method="KMeansGCN"), files["out"], capsys)
    assert re.fullmatch(rf"unknown method 'KMeansGCN'; known methods: {re.escape(', '.join(available_samplers()))}", msg), msg


def test_method_name_is_case_insensitive(files, capsys):
    assert main(select_args(files, method="random", extra=["--seed", "4"])) == 0
    lower = capsys.readouterr().out
    assert main(select_args(files, method="Random", extra=["--seed", "4"])) == 0
    assert capsys.readouterr().out == lower


@pytest.mark.parametrize(
    "method, extra, option",
    [
        ("Random", ["--margin-rule", "farthest"], "--margin-rule='farthest'"),
        ("Random", ["--normalization", "row"], "--normalization='row'"),
        ("CoreSet", ["--gcn-epochs", "5"], "--gcn-epochs=5"),
        ("CoreSet", ["--epochs", "5"], "--gcn-epochs=5"),  # the older name of --gcn-epochs
        ("CoreGCN", ["--margin-rule", "closest"], "--margin-rule='closest'"),
    ],
)
def test_gcn_only_option_on_other_method(files, method, extra, option, capsys):
    msg = run_bad(select_args(files, method=method, extra=extra), files["out"], capsys)
    expected = f"option {option} applies to none of the methods ({method}); remove it or add a method that takes it"
    assert msg == expected, msg


def test_bad_epochs_and_seed(files, capsys):
    msg = run_bad(select_args(files, method="Random", extra=["--seed", "-1"]), files["out"], capsys)
    assert re.fullmatch(r"--seed=-1 must be an integer in \[0, 9223372036854775807\]", msg), msg
    msg = run_bad(select_args(files, method="CoreSet", extra=["--seed", str(2**64)]), files["out"], capsys)
    assert re.fullmatch(r"--seed=18446744073709551616 must be an integer in \[0, \d+\]", msg), msg
    args = select_args(files, method="CoreGCN") + ["--gcn-epochs", "0"]  # the later --gcn-epochs wins
    msg = run_bad(args, files["out"], capsys)
    assert re.fullmatch(r"--gcn-epochs=0 must be a positive integer", msg), msg


def test_out_in_missing_directory(files, capsys):
    out = files["out"].parent / "no_such_dir" / "picked.txt"
    msg = run_bad(select_args(files), out, capsys)
    assert re.fullmatch(r"cannot write '.*no_such_dir/picked\.txt': No such file or directory", msg), msg
    assert not out.parent.exists()


def test_out_is_a_directory_leaves_nothing_behind(files, capsys):
    out_dir = files["out"].parent
    target = out_dir / "taken"
    target.mkdir()
    rc = main(select_args(files) + ["--out", str(target)])
    cap = capsys.readouterr()
    assert rc == 2 and cap.out == ""
    assert re.fullmatch(r"seqgcn: error: --out '.*taken' is a directory; give a file path\n", cap.err), cap.err
    assert sorted(os.listdir(out_dir)) == ["taken"] and not os.listdir(target)


@pytest.mark.parametrize(
    "argv_tail, pattern",
    [
        (["--budget", "x"], r"argument --budget: invalid int value: 'x' \(see 'seqgcn select --help'\)"),
        (["--budget", "3", "--normalization", "diagonal"], r"argument --normalization: invalid choice: 'diagonal' .*"),
        (["--budget", "3", "--device", "tpu"], r"argument --device: expected cpu, cuda, cuda:N or auto, got 'tpu' .*"),
        ([], r"the following arguments are required: --budget \(see 'seqgcn select --help'\)"),
    ],
)
def test_argument_parsing_errors_are_one_line(files, argv_tail, pattern, capsys):
    args = ["select", "--features", files["features"], "--labelled", files["labelled"], *argv_tail, "--out", str(files["out"])]
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.startswith(ERROR_PREFIX) and cap.err.count("\n") == 1, cap.err
    assert re.fullmatch(pattern, cap.err[len(ERROR_PREFIX):-1]), cap.err
    assert not files["out"].exists()
