"""Keys per purpose (services/common/keys.py): created once, loudly, safely under concurrent starts; each
process opens exactly its own key files and no other; the router and the notifier open none."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import shutil
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from services.common.envelope import Keyring, KeyringError, PrivateKeyring, RecipientKey, open_sealed, seal_to
from services.common.keys import (
    KEYS,
    PROCESSES,
    TRANSPORT_PRIVATE,
    ensure_keys,
    key_path,
    keys_of,
    load_auditor_keys,
    load_edge_keys,
    load_intake_keys,
    load_sanitiser_keys,
    load_unseal_keys,
)
from services.common.settings import NotifierSettings, RouterSettings, SanitiserSettings

_OPENED: list[str] | None = None


def _record_open(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _OPENED is not None and isinstance(args[0], str | Path):
        _OPENED.append(os.path.realpath(args[0]))


sys.addaudithook(_record_open)  # the interpreter's own record of every file opened; cannot be removed


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every file the code inside opens (Python's `open` audit event), by real path."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


LOADERS = {"edge": load_edge_keys, "intake": load_intake_keys, "sanitiser": load_sanitiser_keys,
           "unseal": load_unseal_keys, "auditor": load_auditor_keys}


def settings_in(folder: Path, **extra: object) -> SanitiserSettings:
    return SanitiserSettings(data_dir=folder, **extra)  # type: ignore[arg-type]


def test_every_key_is_created_once_loudly_and_privately(tmp_path: Path) -> None:
    """ensure_keys makes each of the eight keys once, with a warning naming the key and file (never the key),
    in a 0700 folder with 0600 files; a second call creates nothing and changes nothing."""
    settings = settings_in(tmp_path)
    with capture_logs() as logs:
        created = ensure_keys(settings)
    before = {spec.name: key_path(settings, spec).read_text() for spec in KEYS}
    with capture_logs() as again:
        assert ensure_keys(settings) == []

    assert {spec.name for spec in created} == {spec.name for spec in KEYS}
    assert sorted(e["key"] for e in logs if e["event"] == "key_generated") == sorted(s.name for s in KEYS)
    assert all(e["log_level"] == "warning" for e in logs) and again == []
    folder = tmp_path / "keys"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in folder.iterdir()) == sorted(s.filename for s in KEYS)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    assert {spec.name: key_path(settings, spec).read_text() for spec in KEYS} == before
    secrets = [v for k in KEYS if k.kind == "symmetric" for v in Keyring.load(key_path(settings, k)).keys.values()]
    assert all(base64.b64encode(secret).decode() not in str(logs) for secret in secrets)


def _load_as(args: tuple[str, str]) -> str:
    process, folder = args
    loaded = LOADERS[process](settings_in(Path(folder)))
    if isinstance(loaded, RecipientKey):
        return loaded.to_json()
    if isinstance(loaded, PrivateKeyring):
        return loaded.recipient().to_json()
    return "ok"


def test_processes_starting_at_once_end_up_with_one_set_of_keys(tmp_path: Path) -> None:
    """When the edge and the workers start together on a first local run (as `cpi up` starts them), every
    key is created once and each process loads the same ones: what the edge seals, the intake worker opens."""
    work = [(process, str(tmp_path)) for process in ("edge", "intake", "sanitiser", "unseal") * 3]
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        results = pool.map(_load_as, work)

    publics = {result for (process, _), result in zip(work, results, strict=True) if process in ("edge", "intake")}
    assert len(publics) == 1
    settings = settings_in(tmp_path)
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == sorted(s.filename for s in KEYS)
    sealed = seal_to(b"source", b"sub-1", load_edge_keys(settings))
    assert open_sealed(sealed, b"sub-1", load_intake_keys(settings)) == b"source"


@pytest.mark.parametrize("process", list(LOADERS))
def test_each_process_opens_exactly_its_own_key_files(tmp_path: Path, process: str) -> None:
    """A process's loader opens its own key files and none other; given a folder holding only those (as a
    deployment mounts them) and key creation off, it loads; without one of them it refuses to start."""
    full = settings_in(tmp_path / "full")
    ensure_keys(full)
    mine = keys_of(process)  # type: ignore[arg-type]
    only = tmp_path / "only" / "keys"
    only.mkdir(parents=True)
    for spec in mine:
        shutil.copy(key_path(full, spec), only / spec.filename)
    mounted = settings_in(tmp_path / "only", create_missing_keys=False)

    with files_opened() as opened:
        LOADERS[process](mounted)

    assert sorted(Path(p).name for p in opened if Path(p).parent == only.resolve()) == sorted(
        {spec.filename for spec in mine})
    (only / mine[0].filename).unlink()
    with pytest.raises(KeyringError, match="mount it"):
        LOADERS[process](mounted)


def test_who_holds_what() -> None:
    """The edge holds only the transport public key; only the intake worker and the sanitiser hold the
    transport private key; only the unseal path holds the unseal private key and the audit-signing key (the
    sanitiser, which shares the database, does not); the auditor holds only the audit-signing key's public half;
    the router and notifier none."""
    names = {process: sorted(spec.name for spec in keys_of(process)) for process in PROCESSES}
    assert names == {
        "edge": ["transport-public"],
        "intake": ["transport-private"],
        "sanitiser": ["audit", "store-kek", "transport-private", "unseal-public"],
        "router": [],
        "notifier": [],
        "unseal": ["audit", "audit-signing", "audit-verify", "store-kek", "unseal-private"],
        "auditor": ["audit-verify"],
    }


def test_router_and_notifier_open_no_key_file(tmp_path: Path) -> None:
    """Building the router's and the notifier's workers opens nothing in the keys folder and creates none."""
    from services.notifier.worker import build as build_notifier
    from services.router.worker import build as build_router

    ensure_keys(settings_in(tmp_path))
    keys = (tmp_path / "keys").resolve()
    before = sorted(p.name for p in keys.iterdir())
    with files_opened() as opened:
        build_router(RouterSettings(data_dir=tmp_path, topic_prefix="keys-test."))
        build_notifier(NotifierSettings(data_dir=tmp_path, topic_prefix="keys-test."))

    assert opened, "the audit hook saw no file opened at all"
    assert [p for p in opened if Path(p).is_relative_to(keys)] == []
    assert sorted(p.name for p in keys.iterdir()) == before


def test_a_public_key_without_its_private_half_is_not_replaced(tmp_path: Path) -> None:
    """If the transport private key is missing but its public key exists, no new pair is made (the edge
    would seal to a key nobody holds): the process refuses to start, saying so."""
    settings = settings_in(tmp_path)
    ensure_keys(settings)
    key_path(settings, TRANSPORT_PRIVATE).unlink()

    with pytest.raises(KeyringError, match="without its private key"):
        load_intake_keys(settings)


def test_keys_show_prints_ids_files_and_holders_never_key_material(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cpi keys show` prints, per key, its id, purpose, file and holders, and no byte of any key."""
    from services.cli import main

    monkeypatch.setenv("CPI_DATA_DIR", str(tmp_path))
    assert main(["keys", "init"]) == 0
    capsys.readouterr()
    assert main(["keys", "show"]) == 0
    shown = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [row["key"] for row in shown] == [spec.name for spec in KEYS]
    assert all(row["exists"] and row["key_id"].startswith(row["purpose"]) for row in shown)
    assert {row["key"]: row["holders"] for row in shown}["unseal-private"] == ["unseal"]
    text = json.dumps(shown)
    for spec in KEYS:
        raw = json.loads(key_path(settings_in(tmp_path), spec).read_text())
        material = [v for k, v in raw.items() if k in ("mlkem768", "x25519")] + [
            part for value in (raw.get("keys") or {}).values()
            for part in (value.values() if isinstance(value, dict) else [value]) if isinstance(part, str)]
        assert material and not any(m in text for m in material if len(m) > 30)
