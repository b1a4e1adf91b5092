"""A bad suite stops at load with one line (exit 2): nothing planned, nothing stored."""

from __future__ import annotations

import pytest

from benchmark.cli import main

HEAD = 'name = "bad"\ndatasets = ["emotions"]\nmodels = ["mlp", "br"]\n'


@pytest.mark.parametrize("body, expected", [
    ('[model.mlp]\nparams = { lr = "fast" }', ["[model.mlp]", "lr", "'fast'", "a number"]),
    ('[model.mlp]\nparams = { epochs = 0 }', ["[model.mlp]", "epochs", "0", "integer >= 1"]),
    ('[model.br]\nparams = { class_weight = "heavy" }', ["[model.br]", "class_weight", "'heavy'", "one of"]),
    ('seeds = [-1]', ["seeds", "-1"]),
    ('split_seed = -3', ["split_seed", ">= 0", "-3"]),
    ('trials = "many"', ["trials", "integer", "'many'"]),
    ('epochs = "x"', ["epochs", "integer", "'x'"]),
    ('val_grid = ["a"]', ["val_grid", "'a'"]),
    ('oracle_grid = [0.5, 1.5]', ["oracle_grid", "between 0 and 1"]),
    ('trails = 3', ["trails", "did you mean trials"]),
    ('objective = "maf1"', ["objective", "did you mean maF1"]),
    ('resample = "seeds"', ["resample", "model, subset, split"]),
    ('budget = "soon"', ["budget", "'soon'"]),
    ('[[dataset]]\nname = "mine"\nformat = "mulan"\nxml = "nosuch.xml"\ntrain = "nosuch-train.arff"\ntest = "t.arff"',
     ["mine", "not found", "nosuch"]),
    ('[model.mlp]\ntune = ["nope"]', ["[model.mlp] tune", "nope", "search space"]),
    ('[model."mlp-x"]\nbase = "mlpp"', ["mlpp", "did you mean"]),
    ('[model.mlp.datasets.emotoins]\nparams = { epochs = 3 }', ["[model.mlp.datasets.emotoins]", "did you mean emotions"]),
    ('[model.mlp.datasets.emotions]\nparams = { epochs = 0 }', ["[model.mlp]", "epochs", "integer >= 1"]),
    ('[model.mlp.datasets.emotions]\nparams = { widht = 3 }', ["[model.mlp.datasets.emotions]", "widht"]),
    ('[model.mlp.datasets.emotions]\ntune = ["nope"]', ["[model.mlp.datasets.emotions] tune", "nope"]),
    ('[model.mlp.datasets.emotions]\ntrials = 0', ["[model.mlp.datasets.emotions]", "trials", "allowed: params, tune"]),
])
def test_a_bad_field_is_one_line_at_load_and_nothing_is_stored(tmp_path, capsys, body, expected):
    suite = tmp_path / "bad.toml"
    suite.write_text(HEAD + body + "\n")
    if "[[dataset]]" in body:
        suite.write_text('name = "bad"\nmodels = ["br"]\n' + body + "\n")
    if 'base = "mlpp"' in body:
        suite.write_text('name = "bad"\ndatasets = ["emotions"]\nmodels = ["mlp-x"]\n' + body + "\n")
    results = tmp_path / "results"
    assert main(["run", "--suite", str(suite), "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for part in expected:
        assert part in err[0], (part, err[0])
    if "nosuch" in body:
        assert str(tmp_path / "nosuch") in err[0], "the real path is named"
    assert not results.exists(), "nothing planned or stored"


def test_dry_run_validates_the_device(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for device in ("cuda", "gpu", "cuda:0"):
        assert main(["run", "--suite", "smoke", "--device", device, "--dry-run", "--results", "/tmp/unused"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_a_negative_count_whose_default_is_zero_is_refused_at_load(tmp_path, capsys):
    suite = tmp_path / "bad.toml"
    suite.write_text('name = "bad"\ndatasets = ["emotions"]\nmodels = ["lamp"]\n'
                     '[model.lamp.datasets.emotions]\nparams = { label_block = -1 }\n')
    assert main(["run", "--suite", str(suite), "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err.strip()
    assert "label_block = -1" in err and "integer >= 0" in err, err
    assert not (tmp_path / "results").exists()

