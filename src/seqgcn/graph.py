"""The sampler's graph as an operator: A·Z without ever forming the N×N matrix A.

Paper eq. 4, with V the (N, m) features, each row L2-normalised:

    S = V Vᵀ                      cosine similarities, (N, N), never materialised
    A = D⁻¹ (S − I) + I           normalization="row"    (as written in the paper)
    A = (S − I) D⁻¹ + I           normalization="column" (the authors' reference code)

D is the diagonal degree matrix of S − I. S is symmetric, so its row and column
sums agree: d = V (Vᵀ 1) − 1. Since S has rank ≤ m,

    A Z = D⁻¹ (V (Vᵀ Z) − Z) + Z          (row)
    A Z = V (Vᵀ D⁻¹Z) − D⁻¹Z + Z          (column)

costs O(N·m·k) time and O(N·(m + k)) memory for Z of shape (N, k).

Ablations of the paper (§4.1): ``kind="eye"`` (A = I: the GCN becomes a dense
network) and ``kind="ones"`` (S filled with ones: every node equally similar to
every other, A = (11ᵀ − I)/(N − 1) + I under either normalisation).
"""

from __future__ import annotations

import warnings

import torch

from seqgcn.checks import InputError

NORMALIZATIONS = ("column", "row")
KINDS = ("cosine", "eye", "ones")


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows of `x` (N, m) scaled to unit Euclidean norm (zero rows stay zero).

    Each row is first divided by its largest |value|, so the squares inside the
    norm can neither overflow (|x| ≳ 1e19 in float32) nor vanish (|x| ≲ 1e-19):
    the result depends on a row's direction only, whatever its scale.
    """
    peak = x.abs().amax(dim=1, keepdim=True)  # (N, 1)
    x = x / torch.where(peak > 0, peak, torch.ones_like(peak))  # (N, m), max |x| = 1 per non-zero row
    norm = x.norm(dim=1, keepdim=True)  # (N, 1), in [1, √m] for non-zero rows
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


class Adjacency:
    """The normalised adjacency A of eq. 4 as a linear operator: ``adj @ z``.

    Parameters
    ----------
    v : Tensor, shape (N, m)
        Node features, each row already L2-normalised (see `l2_normalize`).
    normalization : {"column", "row"}
        "column" as the reference code, "row" as the paper's text.
    kind : {"cosine", "eye", "ones"}
        "cosine" is the paper's graph; "eye" and "ones" are its ablations.
    min_degree : float
        Degrees of S − I below this (possible when features have negative
        cosines, e.g. not taken after a ReLU) are raised to it, with a warning.

    A node whose feature row is all zeros has no direction, hence no cosine
    with any node: it is left isolated (its row and column of A are those of
    I), with a warning that names it as such rather than as a low degree.
    """

    def __init__(self, v: torch.Tensor, *, normalization: str = "column", kind: str = "cosine", min_degree: float = 1e-6):
        self.v = v
        self.n = v.shape[0]
        self.normalization = normalization
        self.kind = kind
        if kind == "cosine":
            zero = v.abs().amax(dim=1) == 0  # (N,) rows without a direction
            degree = v @ v.sum(0) - 1.0  # (N,) row sums of S − I, diagonal of D
            if bool(zero.any()):
                warnings.warn(
                    f"{int(zero.sum())} of {self.n} graph nodes have all-zero features (first: node "
                    f"{int(torch.nonzero(zero)[0])}): without a direction they have no cosine similarity "
                    "to any node and were left isolated. Check the feature extraction.",
                    RuntimeWarning,
                    stacklevel=3,
                )
            low = (degree < min_degree) & ~zero
            if bool(low.any()):
                warnings.warn(
                    f"{int(low.sum())} of {self.n} graph nodes have degree < {min_degree:g} "
                    f"(min {float(degree[low].min()):.3g}): their features have mostly negative cosine "
                    "similarities with the other nodes (or are orthogonal to them); degrees were clamped. Use non-negative features (e.g. after a ReLU).",
                    RuntimeWarning,
                    stacklevel=3,
                )
            inv_degree = 1.0 / degree.clamp_min(min_degree)  # (N,)
            self.inv_degree = torch.where(zero, 0.0, inv_degree)[:, None]  # (N, 1): 0 isolates a zero row
        elif kind == "ones":
            self.inv_degree = None
        elif kind != "eye":
            raise InputError(f"kind={kind!r} is not one of {KINDS}")

    def __matmul__(self, z: torch.Tensor) -> torch.Tensor:
        """A @ z for z of shape (N, k); returns (N, k)."""
        if self.kind == "eye":
            return z
        if self.kind == "ones":
            return (z.sum(0, keepdim=True) - z) / max(self.n - 1, 1) + z  # (N, k)
        if self.normalization == "row":
            return self.inv_degree * (self.v @ (self.v.T @ z) - z) + z  # (N, k)
        zd = self.inv_degree * z  # (N, k) D⁻¹ z
        return self.v @ (self.v.T @ zd) - zd + z  # (N, k)

    def transpose(self) -> "Adjacency":
        """Aᵀ, also an operator: S is symmetric, so transposing swaps row and column normalisation."""
        flipped = object.__new__(Adjacency)
        flipped.__dict__.update(self.__dict__)
        flipped.normalization = "row" if self.normalization == "column" else "column"
        return flipped

    def dense(self) -> torch.Tensor:
        """The (N, N) matrix itself: for tests and small graphs only."""
        eye = torch.eye(self.n, dtype=self.v.dtype, device=self.v.device)
        return self @ eye


def dense_adjacency(v: torch.Tensor, *, normalization: str = "column") -> torch.Tensor:
    """Eq. 4 computed literally with N×N matrices (the reference code's way). Tests and benchmarks only."""
    n = v.shape[0]
    eye = torch.eye(n, dtype=v.dtype, device=v.device)
    s = v @ v.T - eye  # (N, N)
    degree = s.sum(1)  # (N,)
    if normalization == "row":
        return s / degree[:, None] + eye
    return s / degree[None, :] + eye
