"""Suites: shipped files, overrides, datasets declared by path, fixed configurations, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.data.download import is_available
from benchmark.errors import BenchmarkError, UnknownNameError
from benchmark.execution.suite import SuiteError, load_suite, shipped_suites
from benchmark.modelapi.base import available_models


def test_shipped_suites_are_complete_and_valid(mirror_dir):
    assert shipped_suites() == ["ablation", "full", "paper", "quick", "smoke"]
    smoke = load_suite("smoke")
    assert [d.name for d in smoke.datasets] == ["emotions", "yeast"]
    assert {m.name for m in smoke.models} == set(available_models())  # every registered model
    assert smoke.fractions == [0.5, 1.0] and smoke.seeds == [0] and smoke.trials == 2
    assert len(smoke.cells()) == 2 * len(available_models()) * 2
    quick = load_suite("quick")
    assert [d.name for d in quick.datasets] == ["emotions", "yeast", "scene"]
    assert quick.fractions == [0.1, 0.25, 0.5, 1.0] and quick.seeds == [0, 1, 2]
    paper = load_suite("paper", data_dir=str(mirror_dir))
    assert paper.fractions == [1.0] and paper.trials == 30 and paper.seeds == [0, 1, 2]
    names = [d.name for d in paper.datasets]
    assert names[:4] == ["yeast", "scene", "bibtex", "delicious"]
    for optional in ("mirflickr", "nus-wide", "fish", "eBird", "sider"):  # used iff their files are local
        from benchmark.data.catalog import get_spec

        available = is_available(get_spec(optional), str(mirror_dir))
        assert (optional in names) == available
        assert any(optional in n for n in paper.notices) == (not available)
    full = load_suite("full", data_dir=str(mirror_dir))
    assert full.fractions == [0.1, 0.2, 0.3, 0.5, 0.7, 1.0] and full.trials == 30
    assert set(names) <= {d.name for d in full.datasets}
    assert "synthetic" not in {d.name for d in full.datasets}
    assert {"emotions", "medical", "enron"} <= {d.name for d in full.datasets}  # other catalog datasets


def test_overrides_replace_suite_values_and_change_the_hash():
    smoke = load_suite("smoke")
    narrowed = load_suite("smoke", models="br,prior", datasets="emotions", fractions="0.1, 1", seeds="3,1",
                          trials=5, epochs=7)
    assert [m.name for m in narrowed.models] == ["br", "prior"]
    assert [d.name for d in narrowed.datasets] == ["emotions"]
    assert narrowed.fractions == [0.1, 1.0] and narrowed.seeds == [1, 3]
    assert narrowed.trials == 5 and narrowed.epochs == 7
    assert narrowed.hash != smoke.hash
    assert load_suite("smoke").hash == smoke.hash  # stable across loads


def test_user_suite_declares_dataset_by_path_and_fixes_params(tmp_path, mirror_dir):
    emotions = mirror_dir / "mulan" / "emotions"
    (tmp_path / "data").mkdir()
    for name in ("emotions.xml", "emotions-train.arff", "emotions-test.arff"):
        (tmp_path / "data" / name).symlink_to(emotions / name)
    suite_file = tmp_path / "mine.toml"
    suite_file.write_text(
        """
name = "mine"
datasets = []
models = ["br", "prior"]
fractions = [1.0]
seeds = [0]
trials = 4

[[dataset]]
name = "my-emotions"
format = "mulan"
xml = "data/emotions.xml"
train = "data/emotions-train.arff"
test = "data/emotions-test.arff"

[model.br]
trials = 0
params = { C = 0.25 }
"""
    )
    suite = load_suite(str(suite_file))
    (entry,) = suite.datasets
    assert entry.name == "my-emotions"
    assert Path(entry.declaration["xml"]).is_absolute()  # workers get absolute paths
    assert suite.model("br").fixed and suite.model("br").params == {"C": 0.25}
    assert not suite.model("prior").fixed

    from benchmark.data.refs import load_ref

    dataset = load_ref(entry, None)
    assert dataset.n_labels == 6 and dataset.n_instances == 593


@pytest.mark.parametrize(
    "body, error",
    [
        ('name = "x"\ndatasets = ["emotions"]\nmodels = ["nope"]', UnknownNameError),
        ('name = "x"\ndatasets = ["emotinos"]\nmodels = ["br"]', UnknownNameError),
        ('name = "x"\ndatasets = ["emotions"]\nmodels = ["br"]\nfractions = [1.5]', SuiteError),
        ('name = "x"\ndatasets = ["emotions"]\nmodels = ["br"]\ntrails = 3', SuiteError),
        ('name = "x"\ndatasets = ["emotions"]\nmodels = ["br"]\n[model.br]\ntrials = 5', SuiteError),
        ('name = "x"\ndatasets = ["emotions"]\nmodels = ["br"]\n[model.br]\ntrials = 0\nparams = {D = 1}', SuiteError),
        ('name = "x"\ndatasets = ["emotions"]\nmodels = ["br"]\npruner = "sometimes"', SuiteError),
        ('name = "x"\ndatasets = [', BenchmarkError),
    ],
)
def test_bad_suites_fail_with_one_clear_error(tmp_path, body, error):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(error):
        load_suite(str(path))


def test_unknown_suite_name_lists_shipped_ones():
    with pytest.raises(UnknownNameError, match="smoke"):
        load_suite("smok")


def test_dry_run_lists_cells_and_done_count(tmp_path, capsys):
    from benchmark.cli import main
    from benchmark.execution.plan import build_plan
    from benchmark.execution.resources import make_plan
    from benchmark.store.results import ResultsStore

    store = ResultsStore(tmp_path)
    suite = load_suite("smoke", models="br,prior", datasets="emotions")
    cells = build_plan(suite, make_plan("cpu", suite.workers)).cells()  # as the command plans it
    store.record({**cells[0]._asdict(), "status": "done"})
    store.record({**cells[1]._asdict(), "config": "another-budget", "status": "done"})  # not this suite's cell
    assert main(["run", "--suite", "smoke", "--models", "br,prior", "--datasets", "emotions",
                 "--results", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 cells, 1 done, 0 failed, 3 to run" in out
    assert len(store.runs_frame()) == 2  # a dry run trains nothing


def test_paper_suite_starts_from_the_published_settings(mirror_dir, tmp_path):
    from benchmark.execution.plan import build_plan
    from benchmark.execution.resources import make_plan

    suite = load_suite("paper", data_dir=str(mirror_dir), datasets="yeast,delicious", models="mpvae,cgmvae,mlp,br")
    plan = build_plan(suite, make_plan("cpu", 1, data_dir=str(mirror_dir)))
    plans = {(g.dataset, g.model.name): g.model for g in plan.groups}
    delicious = plans[("delicious", "mpvae")]
    assert delicious.params["n_train_samples"] == 5 and delicious.params["epochs"] == 200
    assert set(delicious.space) == {"lr", "dropout", "weight_decay"}, "only what the authors grid-searched"
    yeast = plans[("yeast", "mpvae")]
    assert yeast.params["epochs"] == 800 and yeast.params["c_coeff"] == 20.0
    assert set(plans[("yeast", "cgmvae")].space) == {"lr", "dropout", "weight_decay"}
    assert "epochs" not in plans[("yeast", "mlp")].space and plans[("yeast", "mlp")].params == {}
    assert "C" in plans[("yeast", "br")].space


def test_a_dataset_table_changes_only_that_dataset(mirror_dir, tmp_path):
    """[model.NAME.datasets.D] sets params and tune on D; other datasets keep the model's table
    and their cells' identity (config hash) is the same as without the dataset table."""
    from benchmark.execution.plan import build_plan
    from benchmark.execution.resources import make_plan

    head = ('name = "per-dataset"\ndatasets = ["yeast", "scene"]\nmodels = ["mlp"]\ntrials = 2\n'
            '[model.mlp]\nparams = { epochs = 7 }\ntune = ["lr", "dropout"]\n')
    plain, special = tmp_path / "plain.toml", tmp_path / "special.toml"
    plain.write_text(head)
    special.write_text(head + '[model.mlp.datasets.scene]\nparams = { epochs = 3, width = 64 }\ntune = ["lr"]\n')

    def plans(path):
        suite = load_suite(str(path), data_dir=str(mirror_dir))
        plan = build_plan(suite, make_plan("cpu", 1, data_dir=str(mirror_dir)))
        return {g.dataset: g.model for g in plan.groups}

    before, after = plans(plain), plans(special)
    assert after["scene"].params == {"epochs": 3, "width": 64} and set(after["scene"].space) == {"lr"}
    assert after["yeast"].params == {"epochs": 7} and set(after["yeast"].space) == {"lr", "dropout"}
    assert after["yeast"].config == before["yeast"].config
    assert after["scene"].config != before["scene"].config


def test_paper_suite_cuts_lamp_on_the_large_label_sets(mirror_dir, tmp_path):
    from benchmark.execution.plan import build_plan
    from benchmark.execution.resources import make_plan

    suite = load_suite("paper", data_dir=str(mirror_dir), datasets="yeast,bibtex,delicious", models="lamp")
    plan = build_plan(suite, make_plan("cpu", 1, data_dir=str(mirror_dir)))
    plans = {g.dataset: g.model for g in plan.groups}
    assert plans["delicious"].params["label_block"] == 64 and plans["delicious"].params["epochs"] == 10
    assert plans["bibtex"].params == {"dim": 32, "n_layers": 1, "epochs": 30}
    assert plans["yeast"].params == {} and "dim" in plans["yeast"].space, "the paper's LaMP elsewhere"


def test_ablation_suite_declares_the_variants():
    suite = load_suite("ablation")
    by_name = {m.name: m for m in suite.models}
    assert by_name["cgmvae-nocl"].base == "cgmvae" and by_name["cgmvae-nocl"].params == {"c_coeff": 0.0}
    assert by_name["cgmvae-unimodal"].params == {"prior": "unimodal"}
    assert by_name["cgmvae-nokl"].params == {"kl_coeff": 0.0}
