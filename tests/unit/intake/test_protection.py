"""The edge's protections on their own: the token bucket, CSRF tokens, the idempotency table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.common.settings import IntakeSettings
from services.intake.idempotency import IdempotencyStore, Receipt
from services.intake.protection import RateLimiter, csrf_token, csrf_valid, edge_secret


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    """N a minute: N at once, then none, then one more every 60/N seconds; clients are separate."""
    clock = Clock()
    limiter = RateLimiter(6, clock=clock)
    assert [limiter.allow("a") for _ in range(7)] == [True] * 6 + [False]
    assert limiter.allow("b")
    assert limiter.retry_after("a") >= 1
    clock.now = 10.0  # 6 a minute is one every 10 seconds
    assert limiter.allow("a")
    assert not limiter.allow("a")


def test_the_bucket_table_stays_bounded() -> None:
    """A flood of distinct clients does not grow the limiter without bound."""
    clock = Clock()
    limiter = RateLimiter(60, clock=clock)
    for n in range(25_000):
        limiter.allow(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter._buckets) <= 10_000


def test_csrf_tokens_match_only_their_cookie() -> None:
    """A token is valid for the cookie it was made from, under the same secret, and nothing else."""
    token = csrf_token(b"secret", "cookie-1")
    assert csrf_valid(b"secret", "cookie-1", token)
    assert not csrf_valid(b"secret", "cookie-2", token)
    assert not csrf_valid(b"other", "cookie-1", token)
    assert not csrf_valid(b"secret", None, token)
    assert not csrf_valid(b"secret", "cookie-1", "")


def test_the_edge_secret_is_the_setting_or_a_kept_random_one(tmp_path: Path) -> None:
    """CPI_CSRF_SECRET wins; otherwise one random secret is made once and kept (mode 600) across restarts."""
    assert edge_secret(IntakeSettings(data_dir=tmp_path, csrf_secret=SecretStr("configured"))) == b"configured"
    first = edge_secret(IntakeSettings(data_dir=tmp_path))
    assert first == edge_secret(IntakeSettings(data_dir=tmp_path))
    assert len(first) == 32
    assert (tmp_path / "keys" / "intake-edge.secret").stat().st_mode & 0o777 == 0o600


def test_idempotency_claims_new_pending_duplicate_conflict(tmp_path: Path) -> None:
    """A key is new once, pending while in flight, then gives back its receipt; other content conflicts."""
    store = IdempotencyStore(tmp_path / "idem.db")
    receipt = Receipt(receipt_id="r" * 32, received_at=datetime.now(UTC))
    assert store.claim("scope", "print", receipt).outcome == "new"
    assert store.claim("scope", "print", receipt).outcome == "pending"
    store.complete("scope")
    again = store.claim("scope", "print", Receipt(receipt_id="x" * 32, received_at=datetime.now(UTC)))
    assert again.outcome == "duplicate" and again.receipt == receipt
    assert store.claim("scope", "other", receipt).outcome == "conflict"
    store.close()


def test_a_released_claim_can_be_made_again_and_old_claims_are_purged(tmp_path: Path) -> None:
    """After a failed publish the key is free again; purge removes claims past retention."""
    store = IdempotencyStore(tmp_path / "idem.db")
    receipt = Receipt(receipt_id="r" * 32, received_at=datetime.now(UTC))
    store.claim("s", "p", receipt)
    store.release("s")
    assert store.claim("s", "p", receipt).outcome == "new"
    assert store.purge(older_than=-1) == 1
    store.close()


def test_the_idempotency_table_holds_no_readable_submitter(tmp_path: Path) -> None:
    """The table stores HMACs of scope and content, never the email or the key in clear."""
    from schemas import Submission
    from services.intake.idempotency import scope_and_fingerprint
    from tests.unit.intake.samples import valid_submission

    submission = Submission.model_validate(valid_submission(idempotency_key="partner-ref-77"))
    keys = scope_and_fingerprint(submission, b"secret", "partner:northgate-school")
    assert keys is not None
    store = IdempotencyStore(tmp_path / "idem.db")
    store.claim(keys[0], keys[1], Receipt(receipt_id="r" * 32, received_at=datetime.now(UTC)))
    store.complete(keys[0])
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("idem.db*"))
    assert b"northgate" not in raw and b"partner-ref-77" not in raw


def test_partner_keys_let_in_only_their_partner_and_keep_only_hashes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`cpi api-key add` prints a new key once and keeps only its SHA-256 (file 0600); the key names its
    partner; a wrong, empty or missing key names nobody; a malformed file is a clear error."""
    from services.cli import main
    from services.intake.partners import PartnerKeys, PartnerKeysError, bearer

    path = tmp_path / "keys" / "partners.json"
    monkeypatch.setenv("CPI_API_KEYS_FILE", str(path))
    monkeypatch.setenv("CPI_DATA_DIR", str(tmp_path / "data"))
    assert main(["api-key", "add", "northgate-school"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("cpi_") and key not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    keys = PartnerKeys.load(path)
    assert keys.authenticate(key) == "northgate-school"
    assert [keys.authenticate(k) for k in (key + "x", "", None, key.upper())] == [None] * 4
    assert bearer(f"Bearer {key}") == key and bearer(f"bearer  {key} ") == key
    assert bearer(f"Basic {key}") is None and bearer(None) is None
    path.write_text('{"Not An Id": "abc"}')
    with pytest.raises(PartnerKeysError, match="bad entry"):
        PartnerKeys.load(path)
    assert main(["api-key", "add", "Bad Id"]) == 2
