"""Every input check of seqgcn, run once at the public boundary; private helpers assume valid input.

Every message names the argument, the value received, what was expected and,
where it helps, what to do: ``lr=inf must be a finite number > 0``. A failed
check raises `InputError` (a ValueError) or `InputTypeError` (also a TypeError):
the CLI prints their text as a one-line error with exit code 2, while any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


class InputError(ValueError):
    """Bad input from a user (an option, a config value, a file): one line, exit code 2 on the command line."""


class InputTypeError(InputError, TypeError):
    """Input of the wrong type; also a TypeError, so callers may catch either."""


DEVICES = ("cpu", "cuda", "auto")  # and "cuda:N"
# Bounds of sampler options: far above any sensible value, low enough that a typo fails at once instead of
# running for days or asking for terabytes
MAX_STEPS = 1_000_000    # training steps, epochs, iterations, passes
MAX_WIDTH = 65_536       # hidden units, batch sizes
MAX_DEPTH = 1_000        # layers, propagation hops


RESCALES = (None, "matrix", "rows")


def check_features(features, *, name: str = "features", rescale: str | None = None) -> np.ndarray:
    """Return `features` as a finite float32 array of shape (n_samples, n_features).

    rescale : {None, "matrix", "rows"}, default None
        For callers whose result does not depend on the features' scale (every
        sampler): "matrix" when a positive common factor changes nothing (k-Center
        greedy on Euclidean distances), "rows" when a positive factor per row
        changes nothing (the cosine graph's L2-normalised rows). The matrix, or
        each row, is divided by the power of two 2**e that brings its largest
        |value| into [0.5, 1), in the input's own precision and before the float32
        cast. Dividing by a power of two is exact, and squares and norms computed
        later can neither overflow nor underflow because of the units. Finite
        float64 values beyond float32's range (±3.4e38) are accepted this way;
        with None they are an error.
    """
    try:
        arr = np.asarray(features)
    except Exception as exc:  # e.g. a ragged list
        raise InputTypeError(f"{name} must be an array of shape (n_samples, n_features); got {type(features).__name__}: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputTypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):  # casting to float32 would silently drop the imaginary part
        raise InputTypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (n_samples, n_features); got ndim={arr.ndim} with shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} must have at least one row and one column; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)  # integers and booleans: exact in float64, range-checked below
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise InputError(
            f"{name} contains NaN or inf in {rows.size} row(s) (first: row {rows[0]}); "
            "remove or impute them before selecting"
        )
    if rescale is not None:
        peak = np.abs(arr).max(axis=1 if rescale == "rows" else None, keepdims=True)  # (n, 1) or (1, 1)
        arr = np.ldexp(arr, -np.frexp(peak)[1])  # exact: only exponents change; max |x| in [0.5, 1), zeros stay 0
    with np.errstate(over="ignore"):
        arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        peak = float(np.abs(np.asarray(features, dtype=np.float64)).max())
        raise InputError(
            f"{name} holds values up to {peak:.3g} in magnitude, beyond float32's range (±3.4e38); "
            "divide them by a common factor first"
        )
    return arr


def check_index_array(indices, *, n_items: int, name: str, allow_empty: bool = True) -> np.ndarray:
    """Return `indices` as a sorted-preserving int64 array of unique global indices in [0, n_items)."""
    arr = np.asarray(indices)
    if arr.dtype == bool:
        if arr.ndim != 1 or arr.shape[0] != n_items:
            raise InputError(f"{name} as a boolean mask must have length {n_items} (one entry per row of features); got shape {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.ndim != 1:
        raise InputError(f"{name} must be a 1-D list of indices or a boolean mask; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise InputTypeError(f"{name} must hold integer indices or be a boolean mask; got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if not allow_empty and arr.size == 0:
        raise InputError(f"{name} is empty; at least one index is needed")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n_items:
            wrong = lo if lo < 0 else hi
            raise InputError(
                f"{name} holds index {wrong}, outside [0, {n_items - 1}]: features has only {n_items} rows"
            )
        uniq, counts = np.unique(arr, return_counts=True)
        if uniq.size != arr.size:
            dup = int(uniq[np.argmax(counts > 1)])
            raise InputError(f"{name} holds index {dup} more than once; each index may appear only once")
    return arr


def is_int(value) -> bool:
    """An integer that is not a bool (numpy integers included)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(value, *, name: str, low: int = 1, high: int | None = None, extra: str = "") -> int:
    """`value` as an int in [low, high]; ``low=1`` reads "a positive integer"."""
    what = "a positive integer" if low == 1 else f"an integer >= {low}"
    if not is_int(value):
        raise InputTypeError(f"{name}={value!r} must be {what}{extra}")
    if value < low:
        raise InputError(f"{name}={value!r} must be {what}{extra}")
    if high is not None and value > high:
        raise InputError(f"{name}={value!r} must be at most {high:,}")
    return int(value)


def check_positive_int(value, *, name: str) -> int:
    return check_int(value, name=name, low=1)


def check_number(value, *, name: str, what: str = "a finite number", ok=None) -> float:
    """`value` as a float: a finite real number (not a bool) for which ``ok(value)`` holds; `what` says what is expected."""
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool)) or not math.isfinite(value) \
            or (ok is not None and not ok(value)):
        raise InputError(f"{name}={value!r} must be {what}")
    return float(value)


def check_probability(value, *, name: str, high_inclusive: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] with `high_inclusive`)."""
    bound = "[0, 1]" if high_inclusive else "[0, 1)"
    return check_number(value, name=name, what=f"a number in {bound}",
                        ok=(lambda v: 0 <= v <= 1) if high_inclusive else (lambda v: 0 <= v < 1))


def check_choice(value, choices, *, name: str, optional: bool = False):
    """One of `choices` (or None with `optional`)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or value not in choices:
        known = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name}={value!r} is not one of {known}" + (" (or left out for the default)" if optional else ""))
    return value


def check_text(value, *, name: str, optional: bool = False):
    """A non-empty string (or None with `optional`)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"{name}={value!r} must be a non-empty name" + (" (or left out)" if optional else ""))
    return value


def check_device(value, *, name: str = "device") -> str:
    """"cpu", "cuda", "cuda:N" or "auto" (text only: whether a GPU is there is `resolve_device`'s question)."""
    if isinstance(value, str) and (value in DEVICES or (value.startswith("cuda:") and value[5:].isdigit())):
        return value
    raise InputError(f"{name}={value!r} is not supported; use 'cpu', 'cuda', 'cuda:N' or 'auto'")


def resolve_device(device) -> torch.device:
    """The torch.device of a device setting: ``"auto"`` → cuda when available, else cpu; cuda without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    check_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={device!r} but torch.cuda.is_available() is False; use device='cpu' or 'auto'")
    return torch.device(device)
