"""A variant declared in a suite runs, is stored and reported under its own name; ablation,
embedding and many-model layouts in the report."""

from __future__ import annotations

import pytest

from benchmark.cli import main
from benchmark.report import build_report
from benchmark.store.results import ResultsStore

VARIANTS = """
name = "variants"
datasets = ["emotions", "scene"]
models = ["br", "br-weak", "br-strong", "prior"]
fractions = [1.0]
seeds = [0, 1]
trials = 0
resample = "split"

[model."br-weak"]
base = "br"
params = { C = 0.01 }

[model."br-strong"]
base = "br"
params = { C = 10.0 }
"""


@pytest.mark.slow
def test_a_variant_runs_is_stored_and_reported_under_its_own_name(tmp_path):
    suite = tmp_path / "variants.toml"
    suite.write_text(VARIANTS)
    results, out = tmp_path / "res", tmp_path / "report"
    assert main(["run", "--quiet", "--suite", str(suite), "--results", str(results)]) == 0
    frame = ResultsStore(results).runs_frame()
    assert set(frame.model) == {"br", "br-weak", "br-strong", "prior"} and len(frame) == 16
    weak = frame[frame.model == "br-weak"].iloc[0]
    assert weak.params["C"] == 0.01 and weak.settings["model"]["base"] == "br"
    assert frame[frame.model == "br-weak"].config.iloc[0] != frame[frame.model == "br"].config.iloc[0]
    result = build_report(results, out, focus="br")
    md = (out / "index.md").read_text()
    assert "Ablation of br" in md and "br (full)" in md
    ablation = (out / "tables" / "ablation_br.md").read_text()
    assert "br-weak" in ablation and "br-strong" in ablation and "emotions ebF1" in ablation
    assert "resample = split" in md, "the report says which variance its ± shows"
    assert result.n_done == 16
    # --models selects
    assert main(["report", "--results", str(results), "--out", str(tmp_path / "two"), "--models", "br,prior"]) == 0
    assert "br-weak" not in (tmp_path / "two" / "tables" / "maF1.md").read_text()


@pytest.mark.slow
def test_many_models_transpose_and_embeddings_are_drawn(tmp_path):
    suite = tmp_path / "emb.toml"
    models = ["prior", "br", "cc", "mlknn", "rf", "rakeld", "mlaram", "mlp", "cgmvae", "br-a", "br-b"]
    suite.write_text(
        f'name = "many"\ndatasets = ["emotions"]\nmodels = {models!r}\nfractions = [1.0]\nseeds = [0]\ntrials = 0\n'
        '[model.cgmvae]\nparams = { epochs = 3 }\n[model.mlp]\nparams = { epochs = 3 }\n'
        '[model.rf]\nparams = { n_estimators = 20 }\n'
        '[model."br-a"]\nbase = "br"\nparams = { C = 0.05 }\n[model."br-b"]\nbase = "br"\nparams = { C = 5.0 }\n'
        .replace("'", '"'))
    results, out = tmp_path / "res", tmp_path / "report"
    assert main(["run", "--quiet", "--suite", str(suite), "--results", str(results)]) == 0
    build_report(results, out)
    table = (out / "tables" / "maF1.md").read_text()
    assert "| Model |" in table and "Transposed" in table, "11 models: models as rows"
    md = (out / "index.md").read_text()
    assert "Label embeddings" in md and "Spearman" in md
    assert (out / "figures" / "embeddings_cgmvae_emotions.png").exists()
    rho = float((out / "tables" / "embeddings.csv").read_text().splitlines()[1].split(",")[3])
    assert -1 <= rho <= 1
