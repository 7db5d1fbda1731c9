"""Keys for tests, made and loaded the way the processes make and load them (services.common.keys)."""

from __future__ import annotations

from pathlib import Path

from services.common.keys import StoreKeys, ensure_keys, load_sanitiser_keys, load_unseal_keys
from services.common.settings import SanitiserSettings


def key_settings(data_dir: Path, **settings: object) -> SanitiserSettings:
    """Settings whose keys folder is `data_dir`/keys, with every key created there (as `cpi up` does)."""
    chosen = SanitiserSettings(data_dir=data_dir, **settings)  # type: ignore[arg-type]
    ensure_keys(chosen)
    return chosen


def unseal_keys(data_dir: Path) -> StoreKeys:
    """The unseal path's keys (it can seal and open)."""
    return load_unseal_keys(key_settings(data_dir))


def sanitiser_store_keys(data_dir: Path) -> StoreKeys:
    """The sanitiser's store keys (it can seal, not open)."""
    return load_sanitiser_keys(key_settings(data_dir)).store
