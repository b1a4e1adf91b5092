"""Cells keep small artifacts (label embeddings) beside the store, referenced from the row."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.store.results import ResultsStore
from benchmark.store.tables import cell_key


@pytest.mark.slow
def test_a_cell_with_label_embeddings_stores_them_and_delete_removes_them(tmp_path):
    suite = tmp_path / "emb.toml"
    suite.write_text('name = "emb"\ndatasets = ["emotions"]\nmodels = ["cgmvae", "br"]\nfractions = [1.0]\n'
                     'seeds = [0]\ntrials = 0\n[model.cgmvae]\ntrials = 0\nparams = { epochs = 2 }\n')
    results = tmp_path / "res"
    assert main(["run", "--quiet", "--suite", str(suite), "--results", str(results)]) == 0
    store = ResultsStore(results)
    frame = store.runs_frame().set_index("model")
    assert not isinstance(frame.loc["br", "artifacts"], str), "a model without embeddings stores nothing"
    relative = frame.loc["cgmvae", "artifacts"]
    arrays = store.load_artifacts(relative)
    assert arrays["label_embeddings"].shape[0] == 6 and arrays["label_embeddings"].ndim == 2
    counts = arrays["cooccurrence"]
    assert counts.shape == (6, 6) and np.array_equal(counts, counts.T) and int(arrays["n_train"]) > 0
    assert not list((store.artifacts_dir).rglob("*.tmp")), "no temp file left behind"
    row = frame.loc["cgmvae"]
    assert store.delete([cell_key("emotions", "cgmvae", 1.0, 0, row.config)]) == 1
    assert not (store.artifacts_dir / relative).exists()
