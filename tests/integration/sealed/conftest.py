"""Sealed-store fixtures: every test runs against SQLite and a real PostgreSQL.

PostgreSQL is, in order of preference: the server CPI_TEST_POSTGRES_URL names; else a throwaway
server started from the Debian `postgresql` package's binaries (/usr/lib/postgresql/<ver>/bin:
`initdb` then `pg_ctl start`) in a temporary directory on a free loopback port, run as the
`postgres` user when the tests run as root; else the postgres cases skip and say why. Each test
gets a schema of its own on that server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.sanitiser.adapters import RetentionPolicy, SealedStore, open_sealed_store


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL server's bin directory, if any."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL URL for the whole session (an existing server, or a throwaway one)."""
    existing = os.environ.get("CPI_TEST_POSTGRES_URL")
    if existing:
        yield existing
        return
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'psycopg[binary]'")
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip(
            "no PostgreSQL server binaries: apt-get install -y postgresql, or set CPI_TEST_POSTGRES_URL"
        )
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb and postgres refuse to run as root.
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        run_as = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="cpi-pg-"))
    if run_as:
        os.chown(base, user.pw_uid, user.pw_gid)
    data, logfile, port = base / "data", base / "server.log", _free_port()
    try:
        subprocess.run(
            [*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
        )  # fmt: skip
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(logfile), "-w", "-t", "60",
             "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off", "start"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        server_log = logfile.read_text() if logfile.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL from {bindir}: {exc}\n{server_log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class Backend:
    """One store location for one test, with raw SQL access to play the attacker with."""

    name: str
    url: str
    keyring: Path
    raw: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
    files: list[Path] = field(default_factory=list)
    opened: list[SealedStore] = field(default_factory=list)

    def open(self, retention: RetentionPolicy | None = None, keyring: Path | None = None) -> SealedStore:
        """Open a store object on this test's database (closed at teardown)."""
        store = open_sealed_store(self.url, keyring or self.keyring, retention=retention)
        self.opened.append(store)
        return store

    def sql(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run SQL directly on the database (`?` placeholders), committed at once."""
        return self.raw(sql, params)

    def drop_guards(self) -> None:
        """Drop the append-only triggers, as an attacker with DDL rights would."""
        if self.name == "sqlite":
            for trigger in ("sealed_audit_no_update", "sealed_audit_no_delete", "sealed_records_immutable"):
                self.sql(f"DROP TRIGGER {trigger}")
        else:
            self.sql("DROP TRIGGER sealed_audit_append_only ON sealed_audit")
            self.sql("DROP TRIGGER sealed_records_immutable ON sealed_records")

    def everything_at_rest(self) -> bytes:
        """Every byte the store keeps: the SQLite files, or every PostgreSQL table dumped as text."""
        if self.name == "sqlite":
            return b"".join(p.read_bytes() for p in self.files if p.exists())
        tables = self.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
        # Table names come from the catalogue of this test's own schema, not from input.
        query = 'SELECT t::text FROM "{}" t'
        dump = [str(row) for (table,) in tables for row in self.sql(query.format(table))]
        return "\n".join(dump).encode()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty store location on each backend, and a keyring path of its own."""
    keyring = tmp_path / "keys" / "keyring.json"
    if request.param == "sqlite":
        path = tmp_path / "store" / "sealed.db"

        def raw_sqlite(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path, isolation_level=None) as db:
                rows = db.execute(sql, params).fetchall()
            db.close()
            return rows

        files = [path, path.with_name("sealed.db-wal"), path.with_name("sealed.db-shm")]
        chosen = Backend("sqlite", f"sqlite:///{path}", keyring, raw_sqlite, files)
        yield chosen
        for store in chosen.opened:
            store.close()
        return

    import psycopg

    server = request.getfixturevalue("postgres_server")
    schema = f"sealed_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    joiner = "&" if "?" in server else "?"
    url = f"{server}{joiner}options=-csearch_path%3D{schema}"

    def raw_postgres(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with psycopg.connect(url, autocommit=True) as db, db.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params or None)
            return cursor.fetchall() if cursor.description is not None else []

    chosen = Backend("postgres", url, keyring, raw_postgres)
    yield chosen
    for store in chosen.opened:
        store.close()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store(backend: Backend) -> SealedStore:
    """A sealed store on the test's backend with the default retention policy."""
    return backend.open()
