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



def test_a_bad_dataset_file_is_one_error_before_anything_is_planned(tmp_path, capsys):
    """A declared dataset with a malformed row: run and dry run say so in one line, once,
    and the store has no planned cell (report would list them as missing forever)."""
    from benchmark.store.results import ResultsStore

    attributes = "".join(f"@attribute f{i} numeric\n" for i in range(3)) + "@attribute a {0,1}\n@attribute b {0,1}\n"
    rows = "\n".join(f"{i}.0,{i % 3}.5,1.0,{i % 2},{(i + 1) % 2}" for i in range(40))
    (tmp_path / "bad.arff").write_text(f"@relation bad\n{attributes}@data\n{rows}\n1.0,oops,2.0,1,0\n")
    (tmp_path / "bad.xml").write_text('<?xml version="1.0" encoding="utf-8"?>\n'
                                      '<labels xmlns="http://mulan.sourceforge.net/labels">\n'
                                      '<label name="a"></label>\n<label name="b"></label>\n</labels>\n')
    suite = tmp_path / "bad.toml"
    suite.write_text('name = "bad"\nmodels = ["prior", "br", "mlknn"]\ntrials = 0\n[[dataset]]\nname = "bad"\n'
                     'format = "mulan"\nxml = "bad.xml"\narff = "bad.arff"\n')
    for extra in ([], ["--dry-run"]):
        assert main(["run", "--suite", str(suite), "--results", str(tmp_path / "res"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        errors = [line for line in err if line.startswith("error:")]
        assert len(errors) == 1 and "bad.arff" in errors[0], err
        assert not any("calibration failed" in line for line in err), "no retry per model"
    assert ResultsStore(tmp_path / "res").planned_frame().empty, "nothing planned"
