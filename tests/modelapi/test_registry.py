"""Model registry: discovery, declared hyperparameters, lookup errors, `models list`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from optuna.distributions import BaseDistribution

from benchmark.discovery import REPO_ROOT
from benchmark.errors import UnknownNameError
from benchmark.modelapi.base import Model, available_models, get_model

OUR_MODELS = {"prior": "trivial", "br": "classic", "cc": "classic", "ecc": "classic", "mlknn": "knn"}


def run_cli(*args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "benchmark", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_discovery_finds_the_classic_models():
    models = available_models()
    for name, family in OUR_MODELS.items():
        assert name in models, f"{name} not discovered; found {sorted(models)}"
        assert models[name].family == family
        assert issubclass(models[name], Model)
    # abstract helper bases (no name, abstract methods) are not registered
    assert all(getattr(cls, "name", None) for cls in models.values())


@pytest.mark.parametrize("name", sorted(available_models()))
def test_declared_hyperparameters_are_consistent(name):
    """Every tuned hyperparameter has a default, and every default lies in its range."""
    cls = available_models()[name]
    assert set(cls.search_space) <= set(cls.defaults), f"{name}: tuned but no default"
    for param, dist in cls.search_space.items():
        assert isinstance(dist, BaseDistribution), f"{name}.{param} is not an Optuna distribution"
        internal = dist.to_internal_repr(cls.defaults[param])
        assert dist._contains(internal), f"{name}: default {param}={cls.defaults[param]!r} outside {dist}"
    if cls.trains_in_epochs:
        assert "epochs" in cls.defaults, f"{name} trains in epochs but has no 'epochs' hyperparameter"


def test_get_model_suggests_close_names():
    assert get_model("ecc").name == "ecc"
    with pytest.raises(UnknownNameError, match=r"unknown model 'mlkn'.*did you mean mlknn"):
        get_model("mlkn")
    with pytest.raises(UnknownNameError, match="known models: .*br"):
        get_model("zzz-not-a-model")


@pytest.mark.slow
def test_models_list_table():
    table = run_cli("models", "list")
    assert table.returncode == 0, table.stderr
    print(table.stdout)
    lines = table.stdout.splitlines()
    for name in OUR_MODELS:
        assert any(line.split()[:1] == [name] for line in lines), f"{name} missing from the table"
    assert "float [0.01, 100] log" in table.stdout  # br's C range
    assert "{None, balanced}" in table.stdout


def test_unknown_model_on_the_command_line():
    result = run_cli("models", "info", "eccc")
    assert result.returncode == 2
    assert result.stderr.startswith("error: unknown model 'eccc' (did you mean ecc")
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_models_from_an_extra_folder_are_discovered(tmp_path):
    """Also checks the --json listing (one CLI call for both: each costs seconds of imports)."""
    (tmp_path / "my_model.py").write_text(textwrap.dedent('''
        import numpy as np
        from optuna.distributions import FloatDistribution
        from benchmark.modelapi.base import Model

        class Constant(Model):
            """Scores every label with the same value."""
            name = "my_constant"
            family = "example"
            defaults = {"value": 0.5}
            search_space = {"value": FloatDistribution(0.0, 1.0)}

            def fit(self, X, Y, X_val=None, Y_val=None, on_epoch=None):
                self.n_labels_ = Y.shape[1]
                self.fit_info = {"fit_seconds": 0.0}
                return self

            def predict_proba(self, X):
                return np.full((X.shape[0], self.n_labels_), self.params["value"])
    '''))
    assert "my_constant" not in available_models()  # this process has no MLCBENCH_MODELS_PATH
    result = run_cli("models", "list", "--json", extra_env={"MLCBENCH_MODELS_PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    by_name = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert set(OUR_MODELS) <= set(by_name)
    mine = by_name["my_constant"]
    assert (mine["family"], mine["uses_gpu"], mine["trains_in_epochs"]) == ("example", False, False)
    assert mine["hyperparameters"] == [{
        "name": "value", "default": 0.5,
        "search": {"type": "float", "low": 0.0, "high": 1.0, "log": False, "step": None},
    }]
    ecc = {p["name"]: p for p in by_name["ecc"]["hyperparameters"]}
    assert ecc["n_chains"] == {"name": "n_chains", "default": 10, "search": {"type": "fixed"}}
    assert ecc["C"]["search"] == {"type": "float", "low": 0.01, "high": 100.0, "log": True, "step": None}
    assert ecc["chain_method"]["search"]["choices"] == ["predict_proba", "predict"]
