"""The GCN samplers' and CoreSet's picks do not depend on the thread count, the worker count or the machine's load.

Graphs here have more nodes than one block of rows (`seqgcn.graph.BLOCK_ROWS`), so
the blocked products really are split over blocks and threads; features are narrow
and the GCN small, so each selection takes well under a second.
"""

import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from seqgcn.checks import InputError
from seqgcn.graph import BLOCK_ROWS, Adjacency, RowBlocks, l2_normalize
from seqgcn.samplers import CoreGCN, CoreSet, UncertainGCN, get_sampler
from seqgcn.samplers.gcn import (DropoutStream, TwoLayerStep, dropout_masks, gcn_forward, gcn_loss, init_gcn_params,
                                 two_layer_step)

N_ITEMS = 2 * BLOCK_ROWS + 500  # three blocks, the last one partial
FEATURES = np.abs(np.random.default_rng(7).normal(size=(N_ITEMS, 16))).astype(np.float32)
LABELLED = np.arange(0, N_ITEMS, 9)
SMALL_GCN = {"hidden": 16, "epochs": 12, "seed": 3}


def make_samplers(workers):
    return {"UncertainGCN": UncertainGCN(workers=workers, **SMALL_GCN), "CoreGCN": CoreGCN(workers=workers, **SMALL_GCN),
            "CoreSet": CoreSet(seed=3)}


def all_picks(workers):
    return {name: sampler.select(FEATURES, LABELLED, 25).tolist() for name, sampler in make_samplers(workers).items()}


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_picks_do_not_depend_on_torch_threads_or_workers(restore_threads):
    seen = {}
    for threads in (1, 2):
        for workers in (1, 2):
            torch.set_num_threads(threads)
            seen[threads, workers] = all_picks(workers)
            assert torch.get_num_threads() == threads  # the samplers' one-thread setting is undone
    reference = seen[1, 1]
    for key, picks in seen.items():
        assert picks == reference, key


def test_picks_are_the_same_beside_a_busy_process(restore_threads):
    torch.set_num_threads(2)
    idle = all_picks(2)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # let it take its core
        busy = all_picks(2)
    finally:
        hog.kill()
        hog.wait()
    assert busy == idle


def test_every_op_runs_on_one_intra_op_thread(monkeypatch, restore_threads):
    """How the picks stay the same on any machine: at these sizes torch's sums happen to agree
    for 1 and 2 threads anyway, so the test checks the mechanism, in the calling thread and the workers."""
    import seqgcn.samplers.kcenter as kcenter

    torch.set_num_threads(2)
    seen = []
    step = TwoLayerStep.__call__

    def recording_step(self, params, mask, **kwargs):
        seen.append(torch.get_num_threads())
        self.blocks.map(lambda i, rows: seen.append(torch.get_num_threads()))
        return step(self, params, mask, **kwargs)

    greedy = kcenter._k_center_greedy
    monkeypatch.setattr(TwoLayerStep, "__call__", recording_step)
    monkeypatch.setattr(kcenter, "_k_center_greedy", lambda *args: (seen.append(torch.get_num_threads()), greedy(*args))[1])
    CoreGCN(workers=2, **SMALL_GCN).select(FEATURES, LABELLED, 5)
    CoreSet().select(FEATURES, LABELLED, 5)
    assert len(seen) == SMALL_GCN["epochs"] * 4 + 2 and set(seen) == {1}
    assert torch.get_num_threads() == 2


def test_diagnostics_report_the_workers():
    sampler = UncertainGCN(workers=2, **SMALL_GCN)
    sampler.select(FEATURES, LABELLED, 5)
    assert sampler.diagnostics_["workers"] == 2
    assert "cpu_threads" not in sampler.diagnostics_


def small_graph(normalization="column", kind="cosine", n=37, m=6):
    rng = np.random.default_rng(0)
    v = l2_normalize(torch.from_numpy(rng.random((n, m)).astype(np.float32)))
    adj = Adjacency(v, normalization=normalization, kind=kind)
    return rng, v, adj


@pytest.mark.parametrize("normalization", ["column", "row"])
@pytest.mark.parametrize("kind", ["cosine", "eye", "ones"])
def test_blocked_adjacency_product_equals_the_operator(normalization, kind):
    _, v, adj = small_graph(normalization, kind)
    z = torch.from_numpy(np.random.default_rng(1).random((37, 3)).astype(np.float32))
    results = []
    for workers in (1, 2):
        with RowBlocks(37, workers=workers, block_rows=8) as blocks:  # 5 blocks
            results.append(adj.matmul(z, blocks))
    torch.testing.assert_close(results[0], adj @ z, rtol=1e-5, atol=1e-6)
    assert torch.equal(results[0], results[1])  # bit for bit, whichever thread ran which block


@pytest.mark.parametrize("normalization", ["column", "row"])
@pytest.mark.parametrize("kind", ["cosine", "eye", "ones"])
def test_two_layer_step_in_blocks_equals_autograd(normalization, kind):
    rng, v, adj = small_graph(normalization, kind)
    ax = adj @ v
    is_labelled = torch.from_numpy(rng.random(37) < 0.3)
    params = init_gcn_params([6, 5, 1], rng=rng)
    state = rng.bit_generator.state
    (mask,) = dropout_masks(rng, 37, 5, 1, 0.7)  # the float mask autograd needs ...
    rng.bit_generator.state = state
    drawn = DropoutStream(rng, 37, 5, 0.7).next()  # ... and the same mask, drawn block by block

    logits, _ = gcn_forward(ax, adj, params, [mask])
    expected_loss = gcn_loss(logits, is_labelled, 1.2)
    expected = torch.autograd.grad(expected_loss, params)
    grads = []
    for workers in (1, 2):
        with RowBlocks(37, workers=workers, block_rows=8) as blocks:  # 5 blocks, the last of 5 rows
            step = TwoLayerStep(ax, adj, adj.transpose(), is_labelled, 1.2, hidden=5, blocks=blocks)
            loss = step(params, drawn)
        assert loss == pytest.approx(float(expected_loss.detach()), rel=1e-6)
        for p, g in zip(params, expected):
            torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-7)
        grads.append([p.grad.clone() for p in params])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    assert two_layer_step(ax, adj, adj.transpose(), params, mask, is_labelled, 1.2, block_rows=8) == loss


def test_dropout_stream_draws_the_same_masks_in_any_block_order():
    n, hidden = 23, 5  # blocks of 7 rows start mid-word: 7·5 16-bit draws is not a multiple of 4
    whole = dropout_masks(np.random.default_rng(2), n, hidden, 2, 0.6)
    stream = DropoutStream(np.random.default_rng(2), n, hidden, 0.6)
    for expected in whole:
        mask = stream.next()
        rows = [slice(r, min(r + 7, n)) for r in range(0, n, 7)]
        pieces = {r.start: mask[r] for r in reversed(rows)}
        assert torch.equal(torch.cat([pieces[r.start] for r in rows]), expected)


def test_dropout_masks_are_the_draws_of_before():
    """Where n·hidden is a multiple of 4, the masks are those drawn before with rng.integers."""
    before = np.random.default_rng(5).integers(0, 65536, size=(40, 6), dtype=np.uint16) < round(0.7 * 65536)
    (mask,) = dropout_masks(np.random.default_rng(5), 40, 6, 1, 0.7)
    assert torch.equal(mask > 0, torch.from_numpy(before))


@pytest.mark.parametrize("dropout", [1 - 2 ** -17, 1 - 2 ** -18, 0.999999])
def test_a_dropout_that_keeps_no_unit_is_refused(dropout):
    match = rf"dropout={dropout!r} keeps no unit: .* dropout must be in \[0, 1 − 2⁻¹⁷\) = \[0, 0\.9999923706054688\)"
    with pytest.raises(InputError, match=match):
        UncertainGCN(dropout=dropout, **SMALL_GCN).select(FEATURES[:40], [0, 1], 2)
    with pytest.raises(InputError, match=r"dropout=0\.999999 keeps no unit"):
        get_sampler("UncertainGCN(dropout=0.999999)")


def test_the_largest_allowed_dropout_runs():
    picked = UncertainGCN(dropout=1 - 2 ** -16, hidden=4, epochs=2).select(FEATURES[:40], [0, 1], 2)
    assert len(set(picked)) == 2


def test_workers_must_be_a_positive_integer():
    with pytest.raises(InputError, match="workers=0"):
        UncertainGCN(workers=0).select(FEATURES[:40], [0, 1], 2)


def test_row_blocks_keep_block_order_and_restore_threads(restore_threads):
    torch.set_num_threads(2)
    with RowBlocks(10, workers=2, block_rows=3) as blocks:
        assert torch.get_num_threads() == 1
        assert blocks.map(lambda i, rows: (i, rows.start, rows.stop)) == [(0, 0, 3), (1, 3, 6), (2, 6, 9), (3, 9, 10)]
        with pytest.raises(ZeroDivisionError):
            blocks.map(lambda i, rows: 1 / (i - 2))  # an error in any block reaches the caller
    assert torch.get_num_threads() == 2
