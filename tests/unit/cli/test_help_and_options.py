"""The CLI tells the truth in its help and options (issue 16): whole summaries, ISO 8601 times, roles as a choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import click
import pytest
from click.testing import CliRunner

from cli.main import COMMANDS, cli
from cli.scheduler_cmd import IsoDateTime


def _helps() -> list[tuple[str, str]]:
    runner = CliRunner()
    out = [("payments", runner.invoke(cli, ["--help"], terminal_width=80).output)]
    for name in COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        if isinstance(command, click.Group):
            out.append((name, runner.invoke(cli, [name, "--help"], terminal_width=80).output))
    return out


@pytest.mark.parametrize(("name", "text"), _helps(), ids=lambda v: v if len(v) < 20 else "")
def test_command_lists_never_cut_a_summary(name: str, text: str) -> None:
    commands = text.split("Commands:", 1)[1]
    assert "..." not in commands, f"`{name} --help` cuts a summary:\n{commands}"


def test_every_listed_summary_is_the_whole_first_paragraph() -> None:
    text = " ".join(CliRunner().invoke(cli, ["dlq", "--help"], terminal_width=80).output.split())
    assert (
        "purge Archive every matching dead letter (body and reason) in the database, then delete it from its DLQ."
        in text
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-12-03T17:00:00.250Z", datetime(2026, 12, 3, 17, 0, 0, 250000, tzinfo=UTC)),
        ("2026-12-03T17:00:00+01:00", datetime(2026, 12, 3, 17, tzinfo=timezone(timedelta(hours=1)))),
        ("2026-12-03T17:00", datetime(2026, 12, 3, 17, 0)),
        ("2026-12-03", datetime(2026, 12, 3)),
        ("20261203T170000Z", datetime(2026, 12, 3, 17, tzinfo=UTC)),
    ],
)
def test_scheduler_now_accepts_any_iso_8601(given: str, expected: datetime) -> None:
    assert IsoDateTime().convert(given, None, None) == expected


def test_scheduler_now_refuses_a_non_date_with_exit_2_and_help_shows_no_strftime() -> None:
    runner = CliRunner()
    refused = runner.invoke(cli, ["scheduler", "--once", "--now", "yesterday"])
    assert refused.exit_code == 2 and "ISO 8601" in refused.output
    assert "%Y" not in runner.invoke(cli, ["scheduler", "--help"]).output


def test_token_role_is_a_choice() -> None:
    result = CliRunner().invoke(cli, ["token", "--role", "superuser"])
    assert result.exit_code == 2 and "operator" in result.output


def test_the_stack_prints_one_banner_that_says_how_to_reach_payments() -> None:
    import inspect

    from sandbox import stack

    source = inspect.getsource(stack.Stack._start_services)
    assert '"--quiet"' in source  # the sandbox's own banner (sk_test_sandbox) is not printed under `payments run`
    assert ".venv/bin/payments" in inspect.getsource(stack.Stack.summary)


def test_a_cut_cell_ends_with_an_ellipsis_at_a_word_boundary() -> None:
    from cli.output import shorten

    text = "WorkerLost: dead-lettered by SQS redrive with no failure recorded (the worker died on its last receive)"
    cut = shorten(text, 80)
    assert len(cut) <= 80 and cut.endswith("…") and text.startswith(cut[:-1])
    assert text[len(cut) - 1] == " "  # not mid-word
    assert shorten("short", 80) == "short"


def test_human_tables_show_amounts_with_their_currency() -> None:
    from cli.output import money

    assert money(750000, "eur") == "7,500.00 EUR"
    assert money(-236667, "EUR") == "-2,366.67 EUR"
    assert money(1234567, "jpy") == "1,234,567 JPY"
    assert money(5, "eur") == "0.05 EUR"
    assert money(12, "zzz") == "12 ZZZ" and money(None, None) == ""
