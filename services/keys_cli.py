"""`cpi keys init|show|rotate PURPOSE|retire`: one key per purpose, made, shown, rotated and retired.

Rotation makes a new primary, re-wraps or re-seals what is kept under the old key, then retires it
(removes it from its file):

- `store-kek`: the store's lookup secret is wrapped again; the old KEK is removed at once.
- `audit`: the chain continues under the new key after a checkpoint that vouches for every entry
  before it (sealed_store.py); the old key is removed at once.
- `unseal`: every sealed record's data key is sealed again to the new public key, and every held
  intel still waiting for review is re-published sealed to it; the old private key is retired
  after `--grace-hours` (default 24: time for every sanitiser to load the new public key, i.e. to
  be restarted), by `cpi keys retire`, which first re-seals anything sealed to it meanwhile.
  `--grace-hours 0` retires it in the same run.
- `transport`: nothing is kept under it but the received and accepted topics, which cannot be
  re-sealed in place and which their retention (7 days) empties. The old private key is kept,
  marked `retire_after` (rotation time + that retention + 1 day, `--grace-days` to change), so the
  intake worker and sanitiser can still open what is on those topics; `cpi keys retire` (run daily,
  or by the next rotation) removes it after that date. The edge must be restarted to load the new
  public key; until then it seals to the old one, which opens until its retirement.

Rotation needs the keys of the unseal path (it runs there, as the Intelligence Unit's operation),
plus the sealed store; `unseal` also reads and writes the held topic.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from schemas.topics import ACCEPTED, HELD, RECEIVED
from services.common.envelope import Keyring, PrivateKeyring, RecipientKey, new_key_id, reseal
from services.common.errors import CpiError
from services.common.keys import (
    AUDIT,
    KEYS,
    STORE_KEK,
    TRANSPORT_PRIVATE,
    TRANSPORT_PUBLIC,
    UNSEAL_PRIVATE,
    UNSEAL_PUBLIC,
    KeySpec,
    StoreKeys,
    ensure_keys,
    key_path,
    load_unseal_keys,
)
from services.common.serde import encode
from services.common.settings import SanitiserSettings
from services.common.signing import SigningKeyring, VerifyKeys

log = structlog.get_logger(__name__)

PURPOSES = ("transport", "unseal", "store-kek", "audit")
_DAY_MS = 24 * 3600 * 1000
# The received and accepted topics keep records this long: the old transport key must open them till then.
TRANSPORT_GRACE = timedelta(milliseconds=max(RECEIVED.retention_ms, ACCEPTED.retention_ms) + _DAY_MS)
UNSEAL_GRACE = timedelta(hours=24)


def _now() -> datetime:
    return datetime.now(UTC)


def describe(settings: SanitiserSettings, spec: KeySpec) -> dict[str, Any]:
    """What `cpi keys show` prints for one key: ids, purpose, file, holders. Never key material."""
    path = key_path(settings, spec)
    shown: dict[str, Any] = {"key": spec.name, "purpose": spec.purpose, "file": str(path),
                             "holders": list(spec.holders), "protects": spec.protects, "exists": path.exists()}
    if not path.exists():
        return shown
    if spec.kind == "public":
        shown["key_id"] = RecipientKey.load(path).key_id
    elif spec.kind in ("signing", "verify"):
        signing = SigningKeyring.load(path) if spec.kind == "signing" else VerifyKeys.load(path)
        shown["key_id"] = signing.primary
        shown["retiring"] = {k: None for k in signing.keys if k != signing.primary}
    elif spec.kind == "private":
        keyring = PrivateKeyring.load(path)
        shown["key_id"] = keyring.primary
        shown["retiring"] = {k: v.retire_after.isoformat() if v.retire_after else None
                             for k, v in keyring.keys.items() if k != keyring.primary}
    else:
        symmetric = Keyring.load(path)
        shown["key_id"] = symmetric.primary
        shown["retiring"] = {k: None for k in symmetric.keys if k != symmetric.primary}
    return shown


def init_keys(settings: SanitiserSettings) -> list[KeySpec]:
    """Create every key that is missing (never replacing one); the ones created."""
    return ensure_keys(settings.model_copy(update={"create_missing_keys": True}))


def _store(settings: SanitiserSettings, keys: StoreKeys) -> Any:
    from services.sanitiser.worker import open_store

    return open_store(settings, keys)


def rotate_transport(settings: SanitiserSettings, grace: timedelta = TRANSPORT_GRACE) -> str:
    """A new transport key pair; the old private key stays until `grace` has passed."""
    private_path = key_path(settings, TRANSPORT_PRIVATE)
    rotated = PrivateKeyring.load(private_path).with_new_primary(_now() + grace)
    # The private file first: a public key must never exist whose private half is not on disk.
    rotated.save(private_path)
    rotated.recipient().save(key_path(settings, TRANSPORT_PUBLIC))
    retire_transport(settings)
    return rotated.primary


def retire_transport(settings: SanitiserSettings) -> list[str]:
    """Remove the transport private keys whose retirement date has passed."""
    path = key_path(settings, TRANSPORT_PRIVATE)
    keyring = PrivateKeyring.load(path)
    due = keyring.due(_now())
    if due:
        keyring.without(due).save(path)
        log.info("key_retired", key=TRANSPORT_PRIVATE.name, key_ids=due)
    return due


def rotate_unseal(settings: SanitiserSettings, grace: timedelta = UNSEAL_GRACE) -> str:
    """A new unseal key pair; every record and waiting held intel re-sealed to it; the old key retired
    after `grace` (at once with no grace)."""
    keys = load_unseal_keys(settings)
    assert keys.unseal_private is not None
    rotated = keys.unseal_private.with_new_primary(_now() + grace)
    rotated.save(key_path(settings, UNSEAL_PRIVATE))
    rotated.recipient().save(key_path(settings, UNSEAL_PUBLIC))
    _reseal_unseal(settings, replace(keys, unseal_private=rotated))
    retire_unseal(settings)
    return rotated.primary


def _reseal_unseal(settings: SanitiserSettings, keys: StoreKeys) -> None:
    assert keys.unseal_private is not None
    store = _store(settings, keys)
    try:
        store.reseal_records(keys.unseal_private)
    finally:
        store.close()
    _reseal_held(settings, keys.unseal_private)


def _reseal_held(settings: SanitiserSettings, unseal: PrivateKeyring) -> int:
    """Re-publish each waiting held intel, same revision, sealed to the new unseal key (the later of equal
    revisions is the state, so the re-sealed copy replaces the old one)."""
    from services.sanitiser.held_cli import _publish, held_state

    moved = []
    for record in held_state(settings).values():
        if record.sealed is not None and record.sealed.key_id != unseal.primary:
            sealed = reseal(record.sealed, record.intel_id.encode(), unseal)
            moved.append((HELD, record.intel_id, encode(record.model_copy(update={"sealed": sealed}))))
    if moved:
        _publish(settings, moved)
    return len(moved)


def retire_unseal(settings: SanitiserSettings) -> list[str]:
    """Retire the unseal private keys whose date has passed, after re-sealing whatever still uses them."""
    path = key_path(settings, UNSEAL_PRIVATE)
    keyring = PrivateKeyring.load(path)
    due = keyring.due(_now())
    if not due:
        return []
    keys = load_unseal_keys(settings)
    _reseal_unseal(settings, keys)
    store = _store(settings, keys)
    try:
        left = {key_id: store.count_sealed_under(key_id) for key_id in due}
    finally:
        store.close()
    if any(left.values()):
        raise CpiError(f"records are still sealed to retiring unseal keys {sorted(k for k in left if left[k])}; "
                       "not retiring them")
    keyring.without(due).save(path)
    log.info("key_retired", key=UNSEAL_PRIVATE.name, key_ids=due)
    return due


def rotate_store_kek(settings: SanitiserSettings) -> str:
    """A new store KEK; the lookup secret wrapped under it; the old KEK removed."""
    keys = load_unseal_keys(settings)
    path = key_path(settings, STORE_KEK)
    both = keys.kek.with_new_primary(new_key_id(STORE_KEK.purpose))
    both.save(path)  # both keys on disk before the database moves, so a crash loses nothing
    store = _store(settings, replace(keys, kek=both))
    try:
        store.rewrap_secret(both)
    finally:
        store.close()
    both.only_primary().save(path)
    return both.primary


def rotate_audit(settings: SanitiserSettings) -> str:
    """A new audit key; the chain checkpointed and continued under it; the old key removed."""
    keys = load_unseal_keys(settings)
    path = key_path(settings, AUDIT)
    new_id = new_key_id(AUDIT.purpose)
    # Both keys on disk first, the old still primary: until the checkpoint is written the store must
    # keep verifying under the old key (it follows the last checkpoint's key, else the primary).
    grown = keys.audit.with_new_primary(new_id)
    both = Keyring(primary=keys.audit.primary, keys=grown.keys)
    both.save(path)
    store = _store(settings, replace(keys, audit=both))
    try:
        store.rotate_audit_key(grown)
    finally:
        store.close()
    grown.only_primary().save(path)
    return new_id


def _init(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    created = {spec.name for spec in init_keys(settings)}
    for spec in KEYS:
        print(json.dumps({"key": spec.name, "file": str(key_path(settings, spec)),
                          "status": "created" if spec.name in created else "exists"}))
    return 0


def _show(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    for spec in KEYS:
        print(json.dumps(describe(settings, spec)))
    return 0


def _rotate(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    if args.purpose == "transport":
        grace = TRANSPORT_GRACE if args.grace_days is None else timedelta(days=args.grace_days)
        key_id = rotate_transport(settings, grace)
    elif args.purpose == "unseal":
        hours = args.grace_hours
        key_id = rotate_unseal(settings, UNSEAL_GRACE if hours is None else timedelta(hours=hours))
    elif args.purpose == "store-kek":
        key_id = rotate_store_kek(settings)
    else:
        key_id = rotate_audit(settings)
    print(json.dumps({"purpose": args.purpose, "primary": key_id}))
    return 0


def _retire(args: argparse.Namespace) -> int:
    settings = SanitiserSettings()
    print(json.dumps({"transport": retire_transport(settings), "unseal": retire_unseal(settings)}))
    return 0


def register(commands: Any) -> None:
    keys = commands.add_parser("keys", help="the pipeline's keys, one per purpose: init, show, rotate, retire")
    actions = keys.add_subparsers(dest="action", required=True)
    actions.add_parser("init", help="create every missing key (folder 0700, files 0600; never overwrites)") \
        .set_defaults(run=_init)
    actions.add_parser("show", help="each key's id, purpose, file and which process holds it").set_defaults(run=_show)
    rotate = actions.add_parser("rotate", help="new primary key; re-wrap or re-seal what is kept; retire the old")
    rotate.add_argument("purpose", choices=PURPOSES)
    rotate.add_argument("--grace-days", type=float, default=None,
                        help="transport: keep the old private key this long (default: topic retention + 1 day)")
    rotate.add_argument("--grace-hours", type=float, default=None,
                        help="unseal: keep the old private key this long (default 24; 0 retires it now)")
    rotate.set_defaults(run=_rotate)
    actions.add_parser("retire", help="remove retiring keys whose date has passed (after re-sealing)") \
        .set_defaults(run=_retire)
