"""LaMP's block-diagonal label graph (``label_block``), the large-label-set setting.

What must hold:
- ``cooccurrence_blocks`` is a permutation of the labels, deterministic, and puts labels
  that co-occur into the same block (two planted groups are recovered exactly);
- a block at least as large as the label set is the paper's full graph: the same
  predictions as ``label_block = 0``, bit for bit;
- with blocks smaller than the label set (yeast, 14 labels in blocks of 4) the model
  still learns: it beats the label-frequency prior on micro-F1 on the published test
  split, and its scores are in the dataset's label order (a wrong inverse permutation
  would put each label's scores on another label and lose to the prior);
- the label embeddings come back in the dataset's label order.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import published_parts
from mlcbench_models.lamp import cooccurrence_blocks  # noqa: E402  (the alias benchmark installs)

from benchmark.errors import BenchmarkError
from benchmark.evaluation.thresholds import evaluate_protocols
from benchmark.modelapi.base import get_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def test_blocks_are_a_permutation_that_groups_cooccurring_labels():
    rng = np.random.default_rng(0)
    n, groups = 400, [[0, 3, 5, 7], [1, 2, 4, 6]]  # interleaved, so index order is wrong
    Y = np.zeros((n, 8), dtype=np.int8)
    for row in range(n):
        group = groups[row % 2]
        Y[row, rng.choice(group, size=2, replace=False)] = 1
    order = cooccurrence_blocks(Y, 4)
    assert sorted(order.tolist()) == list(range(8))
    assert {frozenset(order[:4].tolist()), frozenset(order[4:].tolist())} == {frozenset(g) for g in groups}
    assert np.array_equal(order, cooccurrence_blocks(Y, 4))
    # a label without positives (column of zeros) is still placed, once
    Y[:, 7] = 0
    assert sorted(cooccurrence_blocks(Y, 3).tolist()) == list(range(8))


def _fit(parts, **params):
    model = get_model("lamp")(seed=0, n_threads=1, dim=32, n_layers=1, **params)
    return model.fit(*parts["train"], *parts["val"])


def test_a_block_as_large_as_the_label_set_is_the_full_graph():
    parts = published_parts("yeast")
    full = _fit(parts, epochs=2, label_block=0)
    whole = _fit(parts, epochs=2, label_block=14)
    assert whole.label_order_ is None
    assert np.array_equal(full.predict_proba(parts["test"][0]), whole.predict_proba(parts["test"][0]))


@pytest.mark.slow
def test_blocks_learn_and_keep_the_label_order():
    parts = published_parts("yeast")
    X_val, Y_val = parts["val"]
    X_test, Y_test = parts["test"]
    model = _fit(parts, epochs=20, label_block=4, lr=1e-3)
    assert model.label_order_ is not None and sorted(model.label_order_.tolist()) == list(range(14))
    ours = evaluate_protocols(Y_val, model.predict_proba(X_val), Y_test, model.predict_proba(X_test))
    prior = get_model("prior")(seed=0).fit(*parts["train"])
    base = evaluate_protocols(Y_val, prior.predict_proba(X_val), Y_test, prior.predict_proba(X_test))
    print(f"\nlamp blocks of 4: miF1 {ours['val']['metrics']['miF1']:.4f}, prior {base['val']['metrics']['miF1']:.4f}")
    assert ours["val"]["metrics"]["miF1"] > base["val"]["metrics"]["miF1"] + 0.02
    # embeddings in dataset order: row j is the node state that label j's readout reads
    emb = model.label_embeddings()
    net = model.net_
    assert emb.shape == (14, 32)
    j = int(model.label_order_[0])  # dataset label held at node 0
    assert np.allclose(emb[j], net.label_embedding[0].detach().numpy())


def test_a_negative_block_is_refused():
    parts = published_parts("yeast")
    with pytest.raises(BenchmarkError, match="label_block"):
        _fit(parts, epochs=1, label_block=-1)


def test_prediction_in_row_chunks_bounds_memory_and_changes_nothing(monkeypatch):
    """LaMP predicts in chunks sized by its per-row activations: a handful of rows at
    L = 983 with the full graph (the harness's 8192-row batches needed 30 GB on delicious),
    every row at once on yeast; chunked and whole predictions are the same numbers."""
    import sys

    parts = published_parts("yeast")
    model = _fit(parts, epochs=2, label_block=4)
    lamp = sys.modules[type(model).__module__]  # the module the registry loaded the class from
    X_test = parts["test"][0]
    whole = model.predict_proba(X_test)
    assert model.eval_rows(len(X_test)) == len(X_test)
    monkeypatch.setattr(lamp, "EVAL_BYTES", 4 * 14 * (4 * 32 + 128 + 4 * 4) * 7)  # 7 rows per chunk
    assert model.eval_rows(len(X_test)) == 7
    np.testing.assert_allclose(model.predict_proba(X_test), whole, rtol=1e-5, atol=1e-6)
    monkeypatch.undo()
    big = get_model("lamp")(seed=0)
    big.n_labels_ = 983
    assert 1 <= big.eval_rows(8192) <= 20, "full graph at delicious' L: a few rows per chunk"
