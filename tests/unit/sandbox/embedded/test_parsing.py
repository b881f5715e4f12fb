"""Small pieces of the embedded services that need no service: postmaster.pid, URLs, an unreachable Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.embedded.postgres import EmbeddedPostgres, PostmasterStatus
from sandbox.embedded.redis import local_redis_reachable
from sandbox.ports import free_port

POSTMASTER_PID = """4242
/work/main/var/postgres
1795660000
54321

127.0.0.1
  1234567     65536
ready
"""


def test_postmaster_pid_is_parsed() -> None:
    info = PostmasterStatus.parse(POSTMASTER_PID)
    assert info == PostmasterStatus(pid=4242, port=54321, listen="127.0.0.1", status="ready")


@pytest.mark.parametrize("text", ["", "4242\n/x\n", "notapid\n/x\n1\n2\n\n127.0.0.1\n1 2\nready\n"])
def test_a_partial_postmaster_pid_means_not_ready(text: str) -> None:
    assert PostmasterStatus.parse(text) is None


def test_postgres_url_quotes_the_password() -> None:
    url = EmbeddedPostgres._make_url(5555, "a/b@c", "payments")
    assert url == "postgresql+psycopg://postgres:a%2Fb%40c@127.0.0.1:5555/payments"


def test_postgres_side_files_live_next_to_pgdata() -> None:
    pg = EmbeddedPostgres(Path("var/postgres"))
    assert pg.password_file.name == "postgres.password"
    assert pg.password_file.parent == pg.data_dir.parent
    assert pg.url is None and not pg.is_running()


def test_unreachable_redis_is_reported_without_raising() -> None:
    assert local_redis_reachable(f"redis://127.0.0.1:{free_port()}/0") is False
    assert local_redis_reachable("not a url") is False


def test_a_running_server_without_tcp_is_refused_but_can_be_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sandbox.embedded import postgres

    monkeypatch.setattr(postgres, "_pid_is_postgres", lambda pid: True)
    pg = EmbeddedPostgres(tmp_path / "pg")
    pg.data_dir.mkdir()
    (pg.data_dir / "postmaster.pid").write_text(POSTMASTER_PID.replace("127.0.0.1", ""))
    with pytest.raises(postgres.EmbeddedPostgresError, match=r"without listening on 127\.0\.0\.1"):
        pg._running_port()
    assert pg._running_port(require_tcp=False) == 54321
    assert pg.is_running()
    (pg.data_dir / "postmaster.pid").write_text(POSTMASTER_PID.replace("ready", "starting"))
    assert not pg.is_running()
    monkeypatch.setattr(postgres, "_pid_is_postgres", lambda pid: False)  # a stale file after a crash
    (pg.data_dir / "postmaster.pid").write_text(POSTMASTER_PID)
    assert not pg.is_running()
