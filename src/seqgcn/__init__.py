"""seqgcn: deep active learning with Sequential Graph Convolutional Networks.

Caramalau, Bhattarai and Kim, "Sequential Graph Convolutional Network for Active
Learning", CVPR 2021. The sampler needs only one feature vector per item::

    from seqgcn import get_sampler
    picked = get_sampler("CoreGCN", seed=0).select(features, labelled, budget=100)
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("seqgcn")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from seqgcn.pool import PoolState  # noqa: E402
from seqgcn.samplers import available_samplers, get_sampler  # noqa: E402

__all__ = ["PoolState", "available_samplers", "get_sampler", "__version__"]
