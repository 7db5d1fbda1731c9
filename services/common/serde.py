"""JSON on the wire: encode a contract to bytes, decode bytes to a contract or a clear DecodeError."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from services.common.errors import DecodeError

M = TypeVar("M", bound=BaseModel)


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def decode(model: type[M], data: bytes) -> M:
    """Parse and validate; the error names fields and codes only, never the bytes (they may hold provenance)."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        problems = ", ".join(
            f"{'/'.join(str(p) for p in e['loc']) or '<root>'}:{e['type']}"
            for e in exc.errors(include_input=False, include_url=False, include_context=False)[:10]
        )
        raise DecodeError("undecodable", f"not a {model.__name__}: {problems}"[:1000]) from None
