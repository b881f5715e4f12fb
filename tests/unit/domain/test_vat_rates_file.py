"""config/vat_rates.json: shipped with the package, validated on load, malformed files refused clearly."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.domain.vat import VAT_RATES_PATH, VatDataError, load_vat_rates, shipped_vat_rates

SHIPPED: dict[str, Any] = json.loads(VAT_RATES_PATH.read_text(encoding="utf-8"))


def test_shipped_file_loads_and_names_its_sources() -> None:
    rates = load_vat_rates()
    assert len(rates.states) == 27
    assert any("TEDB" in s for s in rates.sources)
    assert rates.states["GR"].vat_prefix == "EL"
    assert all(state.vat_prefix == code for code, state in rates.states.items() if code != "GR")
    # Rates are decimal strings in the file, never JSON numbers (25.5 must not pass through a float).
    for state in SHIPPED["states"].values():
        for period in state["periods"]:
            assert isinstance(period["standard"], str)
            assert all(isinstance(r, str) for r in period["reduced"])


def test_a_bad_file_is_refused_when_loaded(tmp_path: Path) -> None:
    # A process loads its rates once, before taxing anything: a bad file stops it there.
    bad = tmp_path / "vat_rates.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(VatDataError, match="cannot read"):
        load_vat_rates(bad)
    with pytest.raises(VatDataError):
        load_vat_rates(tmp_path / "missing.json")
    assert shipped_vat_rates().path.endswith("vat_rates.json")


def _mutated(tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    data = copy.deepcopy(SHIPPED)
    change(data)
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _period(data: dict[str, Any], cc: str, i: int = 0) -> dict[str, Any]:
    period: dict[str, Any] = data["states"][cc]["periods"][i]
    return period


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["states"].pop("MT"), "27 member states"),
        (lambda d: d["states"].update(GB={"name": "UK", "vat_prefix": "GB", "periods": []}), "27 member states"),
        (lambda d: _period(d, "DE").update(standard=19), "decimal string"),
        (lambda d: _period(d, "DE").update(standard="nineteen"), "not a decimal"),
        (lambda d: _period(d, "DE").update(standard="45"), "15–30"),
        (lambda d: _period(d, "DE").update(reduced=["7", "25"]), "below the standard"),
        (lambda d: _period(d, "FR").update(super_reduced="6"), "super_reduced"),
        (lambda d: _period(d, "DE").update({"from": "2023-13-01"}), "ISO date"),
        (lambda d: _period(d, "FI", 1).update({"from": "2022-01-01"}), "after the previous"),
        (lambda d: _period(d, "DE").update({"from": "2024-01-01"}), "coverage_from"),
        (lambda d: d["states"]["DE"].update(periods=[]), "non-empty list"),
        (lambda d: d["states"]["DE"].update(vat_prefix="de"), "vat_prefix"),
        (lambda d: d.update(sources=[]), "sources"),
        (lambda d: _period(d, "DE").pop("reduced"), "reduced must be a list"),
    ],
)
def test_malformed_files_are_refused_with_the_entry_named(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    with pytest.raises(VatDataError, match=message) as err:
        load_vat_rates(_mutated(tmp_path, change))
    assert "rates.json" in str(err.value)


def test_importing_the_vat_package_reads_no_file() -> None:
    # The rates are loaded when a process builds its vat stage, never as a side effect of an import.
    probe = (
        "import io, pathlib\n"
        "real = io.open\n"
        "def guarded(file, *a, **k):\n"
        "    assert not str(file).endswith('vat_rates.json'), 'read at import'\n"
        "    return real(file, *a, **k)\n"
        "io.open = pathlib.io.open = guarded\n"
        "import engine.domain.vat, pipelines.payment.vat, engine.ingest.schemas\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
