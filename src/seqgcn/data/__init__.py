"""Datasets: one file per format, all returning `seqgcn.data.base.Dataset`."""

from seqgcn.data.base import CLASSIFICATION, REGRESSION, Dataset, DatasetError
from seqgcn.data.digits import load_digits
from seqgcn.data.registry import available_datasets, load_dataset

__all__ = [
    "CLASSIFICATION",
    "REGRESSION",
    "Dataset",
    "DatasetError",
    "available_datasets",
    "load_dataset",
    "load_digits",
]
