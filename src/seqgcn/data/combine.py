"""A labelled seed set from one dataset, an unlabelled pool from another (paper §4.3).

The paper sub-samples a synthetic pool (StarGAN images generated from RaFD) for
labelling, starting from a seed set of real images. `combine_pools` joins the
two training sets into one global index space:

    rows [0, n_real)                  real images: the seed set is drawn here
    rows [n_real, n_real + n_synth)   synthetic images: candidates are drawn here

and keeps the real test set. The pool dataset's own test split (a loader may
hold one out, e.g. 20 % of an image folder) joins the pool: evaluation never
uses it, so every synthetic image can be selected. Both datasets must describe
the same task, classes and image shape.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from seqgcn.checks import InputError
from seqgcn.data.base import CLASSIFICATION, Dataset


@dataclass(frozen=True)
class CombinedPool:
    """The joined dataset and which global indices may seed, and which may be selected."""

    dataset: Dataset
    seed_among: np.ndarray  # (n_real,) global indices of the real training images
    pool_among: np.ndarray  # (n_pool,) global indices of the pool images (its train and test splits)


def combine_pools(seed_source: Dataset, pool_source: Dataset) -> CombinedPool:
    """Join `seed_source` (real) and `pool_source` (e.g. synthetic) training sets; test on `seed_source`.

    A grey pool beside a colour seed set (or the other way round) is made colour by repeating its one channel,
    as a folder mixing grey and colour images is read (`seqgcn.data.images.read_images`).
    """
    seed_source, pool_source = _same_channels(seed_source), _same_channels(pool_source, like=seed_source)
    seed_source = _same_channels(seed_source, like=pool_source)
    problems = []
    if seed_source.task != pool_source.task:
        problems.append(f"task {seed_source.task!r} vs {pool_source.task!r}")
    if seed_source.x_train.shape[1:] != pool_source.x_train.shape[1:]:
        problems.append(f"image shape {seed_source.x_train.shape[1:]} vs {pool_source.x_train.shape[1:]}")
    if seed_source.x_train.dtype != pool_source.x_train.dtype:
        problems.append(f"pixel dtype {seed_source.x_train.dtype} vs {pool_source.x_train.dtype}")
    if seed_source.task == CLASSIFICATION:
        if seed_source.n_classes != pool_source.n_classes:
            problems.append(f"{seed_source.n_classes} vs {pool_source.n_classes} classes")
        elif seed_source.class_names and pool_source.class_names and tuple(seed_source.class_names) != tuple(pool_source.class_names):
            problems.append(f"class names {list(seed_source.class_names)} vs {list(pool_source.class_names)}")
    elif seed_source.y_train.shape[1:] != pool_source.y_train.shape[1:]:
        problems.append(f"target shape {seed_source.y_train.shape[1:]} vs {pool_source.y_train.shape[1:]}")
    if problems:
        raise InputError(
            f"the seed dataset {seed_source.name!r} and the pool dataset {pool_source.name!r} do not match: "
            + "; ".join(problems)
        )
    n_real, n_pool = seed_source.n_train, pool_source.n_train + pool_source.n_test
    joined = Dataset(
        name=f"{seed_source.name}+{pool_source.name}",
        x_train=np.concatenate([seed_source.x_train, pool_source.x_train, pool_source.x_test]),  # (n_real + n_pool, C, H, W)
        y_train=np.concatenate([seed_source.y_train, pool_source.y_train, pool_source.y_test]),
        x_test=seed_source.x_test,
        y_test=seed_source.y_test,
        task=seed_source.task,
        n_classes=seed_source.n_classes,
        mean=seed_source.mean,
        std=seed_source.std,
        point_dim=seed_source.point_dim,
        target_scale=seed_source.target_scale,
        metric_unit=seed_source.metric_unit,
        class_names=seed_source.class_names,
        info={"seed_source": seed_source.info | {"name": seed_source.name, "n_train": n_real},
              "pool_source": pool_source.info | {"name": pool_source.name, "n_train": n_pool}},
    )
    return CombinedPool(
        dataset=joined,
        seed_among=np.arange(n_real, dtype=np.int64),
        pool_among=np.arange(n_real, n_real + n_pool, dtype=np.int64),
    )


def _same_channels(ds: Dataset, like: Dataset | None = None) -> Dataset:
    """`ds` with its one grey channel repeated to `like`'s three (unchanged otherwise)."""
    if like is None or ds.x_train.ndim != 4 or like.x_train.ndim != 4 or ds.x_train.shape[1] != 1 or like.x_train.shape[1] != 3:
        return ds
    return replace(ds, x_train=np.repeat(ds.x_train, 3, axis=1), x_test=np.repeat(ds.x_test, 3, axis=1),
                   mean=tuple(ds.mean) * 3 if len(ds.mean) == 1 else ds.mean,
                   std=tuple(ds.std) * 3 if len(ds.std) == 1 else ds.std)
