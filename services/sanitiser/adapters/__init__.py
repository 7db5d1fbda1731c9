"""Where the sanitiser talks to the outside: the sealed store."""

from services.sanitiser.adapters.sealed_store import (
    AuditVerification,
    HeldReviewDenied,
    RetentionPolicy,
    SealedRecordNotFound,
    SealedStore,
    SealedStoreError,
    SealRequest,
    UnsealDenied,
    open_sealed_store,
)

__all__ = [
    "AuditVerification",
    "HeldReviewDenied",
    "RetentionPolicy",
    "SealRequest",
    "SealedRecordNotFound",
    "SealedStore",
    "SealedStoreError",
    "UnsealDenied",
    "open_sealed_store",
]
