import numpy as np
import pytest
import torch

from seqgcn.graph import Adjacency, dense_adjacency, l2_normalize

# Four unit vectors in 2-D; S − I and its degrees worked out by hand:
#   S − I = [[0, 1, 0, .6], [1, 0, 0, .6], [0, 0, 0, .8], [.6, .6, .8, 0]],  d = [1.6, 1.6, 0.8, 2.0]
V4 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
A4_ROW = torch.tensor([  # D⁻¹ (S − I) + I
    [1.0, 0.625, 0.0, 0.375],
    [0.625, 1.0, 0.0, 0.375],
    [0.0, 0.0, 1.0, 1.0],
    [0.3, 0.3, 0.4, 1.0],
])


def test_four_node_graph_row_normalization_matches_hand_computation():
    adj = Adjacency(V4, normalization="row")
    torch.testing.assert_close(adj.dense(), A4_ROW)


def test_four_node_graph_column_normalization_is_the_transpose():
    adj = Adjacency(V4, normalization="column")
    torch.testing.assert_close(adj.dense(), A4_ROW.T)


@pytest.mark.parametrize("normalization", ["row", "column"])
@pytest.mark.parametrize("n,m", [(7, 3), (50, 16), (120, 64)])
def test_operator_equals_dense_formula(normalization, n, m):
    g = torch.Generator().manual_seed(n * m)
    v = l2_normalize(torch.rand(n, m, generator=g))
    adj = Adjacency(v, normalization=normalization)
    z = torch.randn(n, 5, generator=g)
    dense = dense_adjacency(v, normalization=normalization)
    torch.testing.assert_close(adj @ z, dense @ z, atol=1e-5, rtol=1e-5)
    # and the dense helper against numpy's literal eq. 4
    vn = v.double().numpy()
    s = vn @ vn.T - np.eye(n)
    d = np.diag(s.sum(1))
    literal = np.linalg.inv(d) @ s + np.eye(n) if normalization == "row" else s @ np.linalg.inv(d) + np.eye(n)
    np.testing.assert_allclose(dense.double().numpy(), literal, atol=1e-5)


def test_ablation_adjacencies():
    v = l2_normalize(torch.rand(5, 3))
    torch.testing.assert_close(Adjacency(v, kind="eye").dense(), torch.eye(5))
    ones = Adjacency(v, kind="ones").dense()
    expected = (torch.ones(5, 5) - torch.eye(5)) / 4 + torch.eye(5)
    torch.testing.assert_close(ones, expected)


def test_low_degree_is_guarded_with_a_warning():
    v = l2_normalize(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [-1.0, 0.01]]))
    with pytest.warns(RuntimeWarning, match="negative cosine"):
        adj = Adjacency(v, normalization="row")
    assert torch.isfinite(adj @ torch.ones(3, 1)).all()


def test_l2_normalize_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    torch.testing.assert_close(l2_normalize(x), torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
