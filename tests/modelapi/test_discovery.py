"""The one registry mechanism (benchmark.discovery.Registry) behind models and formats."""

from __future__ import annotations

import sys
import textwrap

from benchmark import discovery
from benchmark.data.catalog import DatasetFormat, formats, unavailable_formats


def test_registry_lists_a_failing_file_and_keeps_the_others(tmp_path, monkeypatch):
    (tmp_path / "good.py").write_text(textwrap.dedent("""
        from benchmark.data.catalog import DatasetFormat

        class _Base(DatasetFormat):   # no format name: a helper base, not registered
            pass

        class Good(_Base):
            format = "good"
    """))
    (tmp_path / "bad.py").write_text("raise RuntimeError('this format file is broken\\nsecond line')\n")
    (tmp_path / "_private.py").write_text("raise AssertionError('never imported')\n")
    package = "mlcbench_test_formats"
    monkeypatch.setitem(sys.modules, package, None)
    del sys.modules[package]
    discovery._install_alias(package, [tmp_path])
    try:
        registry = discovery.Registry(package, lambda: DatasetFormat, key="format", what="dataset format")
        found, unavailable = registry.scan()
        assert list(found) == ["good"] and found["good"].__name__ == "Good"
        assert unavailable == [discovery.Unavailable("bad", tmp_path / "bad.py",
                                                     "RuntimeError: this format file is broken")]
    finally:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]


def test_shipped_formats_all_import():
    assert set(formats()) == {"csv", "libsvm", "mulan", "npy", "synthetic"}
    assert unavailable_formats() == []
    assert [name for name, fmt in formats().items() if not fmt.for_benchmarks] == ["synthetic"]
