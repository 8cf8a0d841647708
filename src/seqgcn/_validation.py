"""Checks run once at the public boundary; private helpers assume valid input.

Every message names the argument, the value received, what was expected and,
where it helps, what to do. The CLI prints the same text as a one-line error.
"""

from __future__ import annotations

import numpy as np


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
        raise TypeError(f"{name} must be an array of shape (n_samples, n_features); got {type(features).__name__}: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must hold numbers; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):  # casting to float32 would silently drop the imaginary part
        raise TypeError(f"{name} must hold real numbers; got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got ndim={arr.ndim} with shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)  # integers and booleans: exact in float64, range-checked below
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise ValueError(
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
        raise ValueError(
            f"{name} holds values up to {peak:.3g} in magnitude, beyond float32's range (±3.4e38); "
            "divide them by a common factor first"
        )
    return arr


def check_index_array(indices, *, n_items: int, name: str, allow_empty: bool = True) -> np.ndarray:
    """Return `indices` as a sorted-preserving int64 array of unique global indices in [0, n_items)."""
    arr = np.asarray(indices)
    if arr.dtype == bool:
        if arr.ndim != 1 or arr.shape[0] != n_items:
            raise ValueError(f"{name} as a boolean mask must have length {n_items} (one entry per row of features); got shape {arr.shape}")
        return np.flatnonzero(arr).astype(np.int64)
    if arr.size == 0:
        arr = arr.astype(np.int64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D list of indices or a boolean mask; got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer indices or be a boolean mask; got dtype {arr.dtype}")
    arr = arr.astype(np.int64, copy=False)
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} is empty; at least one index is needed")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n_items:
            wrong = lo if lo < 0 else hi
            raise ValueError(
                f"{name} holds index {wrong}, outside [0, {n_items - 1}]: features has only {n_items} rows"
            )
        uniq, counts = np.unique(arr, return_counts=True)
        if uniq.size != arr.size:
            dup = int(uniq[np.argmax(counts > 1)])
            raise ValueError(f"{name} holds index {dup} more than once; each index may appear only once")
    return arr


def check_positive_int(value, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer; got {value!r}")
    if value <= 0:
        raise ValueError(f"{name}={value} must be a positive integer")
    return int(value)


def check_choice(value, choices, *, name: str) -> str:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(repr(c) for c in choices)}")
    return value


def check_probability(value, *, name: str, high_inclusive: bool = False) -> float:
    value = float(value)
    ok = 0.0 <= value <= 1.0 if high_inclusive else 0.0 <= value < 1.0
    if not ok:
        bound = "[0, 1]" if high_inclusive else "[0, 1)"
        raise ValueError(f"{name}={value} must lie in {bound}")
    return value
