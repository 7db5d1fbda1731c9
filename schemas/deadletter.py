"""DeadLetter: why a message could not be processed. Travels as headers beside the original bytes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from schemas.base import CpiModel

HEADER_PREFIX = "cpi-dlq-"


class DeadLetter(CpiModel):
    """The headers of a cpi.deadletter.v1 record; its value is the original bytes, unchanged.

    `error` is a code and a message written by the pipeline, never a copy of the input.
    """

    origin_topic: Annotated[str, Field(min_length=1, max_length=249)]
    origin_partition: Annotated[int, Field(ge=0)]
    origin_offset: Annotated[int, Field(ge=0)]
    stage: Annotated[str, Field(min_length=1, max_length=32)]
    error_code: Annotated[str, Field(min_length=1, max_length=64)]
    error: Annotated[str, Field(min_length=1, max_length=1000)]
    dead_lettered_at: datetime

    def to_headers(self) -> list[tuple[str, bytes]]:
        return [
            (HEADER_PREFIX + name.replace("_", "-"), str(value).encode())
            for name, value in self.model_dump(mode="json").items()
        ]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | dict[str, bytes]) -> DeadLetter:
        items = headers.items() if isinstance(headers, dict) else headers
        fields = {
            name[len(HEADER_PREFIX):].replace("-", "_"): value.decode()
            for name, value in items
            if name.startswith(HEADER_PREFIX)
        }
        return cls.model_validate(fields)
