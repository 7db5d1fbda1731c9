"""One key per purpose, and which process holds which: the registry, the files, the loaders.

| key               | file                   | holders            | what it does                              |
|-------------------|------------------------|--------------------|-------------------------------------------|
| transport-public  | transport.public.json  | edge               | seals each submission (opens nothing)     |
| transport-private | transport.private.json | intake, sanitiser  | opens received and accepted submissions   |
| unseal-public     | unseal.public.json     | sanitiser          | seals provenance at rest and held intel   |
| unseal-private    | unseal.private.json    | unseal             | opens them: `cpi sealed unseal`, `cpi held`|
| store-kek         | store-kek.json         | sanitiser, unseal  | wraps the sealed store's lookup secret    |
| audit             | audit.json             | sanitiser, unseal  | MACs the sealed store's audit chain       |
| audit-signing     | audit-signing.private.json | unseal         | signs each audit entry                    |
| audit-verify      | audit-signing.public.json  | unseal, auditor | checks the entries' signatures           |

"unseal" is the Intelligence Unit's path (`cpi sealed unseal|audit-verify|purge`, `cpi held
show|redact|release`); the router and the notifier hold no key. "auditor" is `cpi sealed audit-verify`: it
holds only the audit-signing key's public half, so whoever checks the audit log cannot forge an entry, and
neither can whoever holds the database with the sanitiser's keys (store KEK and audit MAC key). Each process
loads its keys with its own loader below and nothing else, so a process that is broken into gives away only those.
Files live in one folder (`CPI_KEYS_DIR`, default `<data dir>/keys`), or each where `CPI_KEY_FILES`
says; deployments mount each purpose's Secret only into the pods that hold it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import structlog

from services.common.envelope import Keyring, KeyringError, PrivateKeyring, RecipientKey, new_key_id
from services.common.settings import PlatformSettings
from services.common.signing import SigningKeyring, VerifyKeys

log = structlog.get_logger(__name__)

Process = Literal["edge", "intake", "sanitiser", "router", "notifier", "unseal", "auditor"]
PROCESSES: tuple[Process, ...] = ("edge", "intake", "sanitiser", "router", "notifier", "unseal", "auditor")


@dataclass(frozen=True)
class KeySpec:
    """One key file: its name, purpose, default file name, kind, who holds it and what it protects."""

    name: str
    purpose: str
    filename: str
    kind: Literal["public", "private", "symmetric", "signing", "verify"]
    holders: tuple[Process, ...]
    protects: str


TRANSPORT_PUBLIC = KeySpec("transport-public", "transport", "transport.public.json", "public", ("edge",),
                           "seals each submission at the edge; opens nothing")
TRANSPORT_PRIVATE = KeySpec("transport-private", "transport", "transport.private.json", "private",
                            ("intake", "sanitiser"), "opens received and accepted submissions")
UNSEAL_PUBLIC = KeySpec("unseal-public", "unseal", "unseal.public.json", "public", ("sanitiser",),
                        "seals each sealed record's data key and each held intel; opens nothing")
UNSEAL_PRIVATE = KeySpec("unseal-private", "unseal", "unseal.private.json", "private", ("unseal",),
                         "opens sealed provenance and held intel (the Intelligence Unit only)")
STORE_KEK = KeySpec("store-kek", "store-kek", "store-kek.json", "symmetric", ("sanitiser", "unseal"),
                    "wraps the sealed store's lookup secret")
AUDIT = KeySpec("audit", "audit", "audit.json", "symmetric", ("sanitiser", "unseal"),
                "MACs the sealed store's audit chain")
# Ed25519: the unseal path signs every audit entry; a verifier needs only the public half. Neither the database
# holder nor the sanitiser has the private half, so neither can write an entry that verifies.
AUDIT_SIGNING = KeySpec("audit-signing", "audit-signing", "audit-signing.private.json", "signing", ("unseal",),
                        "signs each audit entry (the database's holder does not have it)")
AUDIT_VERIFY = KeySpec("audit-verify", "audit-signing", "audit-signing.public.json", "verify", ("unseal", "auditor"),
                       "checks each audit entry's signature; signs nothing")
KEYS: tuple[KeySpec, ...] = (TRANSPORT_PUBLIC, TRANSPORT_PRIVATE, UNSEAL_PUBLIC, UNSEAL_PRIVATE, STORE_KEK, AUDIT,
                             AUDIT_SIGNING, AUDIT_VERIFY)
# The private half each public key is derived from.
_PAIRS = {TRANSPORT_PUBLIC.name: TRANSPORT_PRIVATE, UNSEAL_PUBLIC.name: UNSEAL_PRIVATE,
          AUDIT_VERIFY.name: AUDIT_SIGNING}


def keys_of(process: Process) -> tuple[KeySpec, ...]:
    """The keys `process` holds (none for the router and the notifier)."""
    return tuple(spec for spec in KEYS if process in spec.holders)


def key_path(settings: PlatformSettings, spec: KeySpec) -> Path:
    return settings.key_file(spec.name, spec.filename)


@dataclass(frozen=True)
class StoreKeys:
    """What the sealed store is opened with: its KEK and audit key, and the unseal key's public half
    (the sanitiser: it can seal, not open) or private half (the unseal path: it can open)."""

    kek: Keyring
    audit: Keyring
    unseal_public: RecipientKey | None = None
    unseal_private: PrivateKeyring | None = None
    audit_signing: SigningKeyring | None = None  # the unseal path's only: without it no audit entry is written


@dataclass(frozen=True)
class SanitiserKeys:
    transport: PrivateKeyring
    store: StoreKeys


def ensure_keys(settings: PlatformSettings, specs: tuple[KeySpec, ...] = KEYS) -> list[KeySpec]:
    """Create each of `specs` that is missing (a public key from its private half, made first if need be)
    and return those created. Safe when several processes start at once: each file is written only if
    absent, and whoever loses the race reads the winner's. With `create_missing_keys` off (deployments,
    which mount their keys) a missing key is an error instead."""
    created: list[KeySpec] = []
    for spec in specs:
        path = key_path(settings, spec)
        if path.exists():
            continue
        if not settings.create_missing_keys:
            raise KeyringError(f"no {spec.name} key at {path}; mount it (CPI_CREATE_MISSING_KEYS is off)")
        if spec.kind in ("public", "verify"):
            created += ensure_keys(settings, (_PAIRS[spec.name],))
            private_path = key_path(settings, _PAIRS[spec.name])
            public_half = (SigningKeyring.load(private_path).verifier() if spec.kind == "verify"
                           else PrivateKeyring.load(private_path).recipient())
            written = public_half.save(path, only_if_absent=True)
        elif spec.kind in ("private", "signing"):
            partner = next(p for p, s in _PAIRS.items() if s is spec)
            public = key_path(settings, next(k for k in KEYS if k.name == partner))
            if public.exists():
                raise KeyringError(f"{public} exists without its private key {path}: restore it, or remove both")
            fresh = (SigningKeyring.generate(spec.purpose) if spec.kind == "signing"
                     else PrivateKeyring.generate(spec.purpose))
            written = fresh.save(path, only_if_absent=True)
        else:
            written = Keyring.generate(new_key_id(spec.purpose)).save(path, only_if_absent=True)
        if written:
            created.append(spec)
            log.warning("key_generated", key=spec.name, path=str(path),
                        advice="generated a local key; deployments mount their own (cpi keys show)")
    return created


def _public(settings: PlatformSettings, spec: KeySpec) -> RecipientKey:
    key = RecipientKey.load(key_path(settings, spec))
    if key.purpose != spec.purpose:
        raise KeyringError(f"{key_path(settings, spec)} is a {key.purpose} key, not {spec.purpose}")
    return key


def _private(settings: PlatformSettings, spec: KeySpec) -> PrivateKeyring:
    keyring = PrivateKeyring.load(key_path(settings, spec))
    if keyring.purpose != spec.purpose:
        raise KeyringError(f"{key_path(settings, spec)} is a {keyring.purpose} key, not {spec.purpose}")
    return keyring


def _load(settings: PlatformSettings, process: Process) -> None:
    ensure_keys(settings, keys_of(process))


def load_edge_keys(settings: PlatformSettings) -> RecipientKey:
    """The edge's only key: the transport public key it seals submissions to."""
    _load(settings, "edge")
    return _public(settings, TRANSPORT_PUBLIC)


def load_intake_keys(settings: PlatformSettings) -> PrivateKeyring:
    """The intake worker's only key: the transport private key (its primary's public half re-seals)."""
    _load(settings, "intake")
    return _private(settings, TRANSPORT_PRIVATE)


def load_sanitiser_keys(settings: PlatformSettings) -> SanitiserKeys:
    """The sanitiser's keys: transport private, unseal public, store KEK, audit key."""
    _load(settings, "sanitiser")
    return SanitiserKeys(transport=_private(settings, TRANSPORT_PRIVATE), store=StoreKeys(
        kek=Keyring.load(key_path(settings, STORE_KEK)), audit=Keyring.load(key_path(settings, AUDIT)),
        unseal_public=_public(settings, UNSEAL_PUBLIC)))


def load_unseal_keys(settings: PlatformSettings) -> StoreKeys:
    """The unseal path's keys: unseal private, store KEK, audit key, audit-signing key."""
    _load(settings, "unseal")
    signing = SigningKeyring.load(key_path(settings, AUDIT_SIGNING))
    if signing.verifier() != load_audit_verify_keys(settings):
        raise KeyringError(f"{key_path(settings, AUDIT_VERIFY)} is not the public half of "
                           f"{key_path(settings, AUDIT_SIGNING)}")
    return StoreKeys(kek=Keyring.load(key_path(settings, STORE_KEK)), audit=Keyring.load(key_path(settings, AUDIT)),
                     unseal_private=_private(settings, UNSEAL_PRIVATE), audit_signing=signing)


def load_auditor_keys(settings: PlatformSettings) -> VerifyKeys:
    """The auditor's only key: the audit-signing key's public half (`cpi sealed audit-verify`)."""
    _load(settings, "auditor")
    return load_audit_verify_keys(settings)


def load_audit_verify_keys(settings: PlatformSettings) -> VerifyKeys:
    keys = VerifyKeys.load(key_path(settings, AUDIT_VERIFY))
    if keys.purpose != AUDIT_VERIFY.purpose:
        raise KeyringError(f"{key_path(settings, AUDIT_VERIFY)} is a {keys.purpose} key, not {AUDIT_VERIFY.purpose}")
    return keys
