"""The router's labelled corpora: which files are training data and which are held out, and their cases.

The corpora live with the tests (tests/unit/router/): `corpus.yaml` and the batches `batches.yaml` lists. A
batch is TRAINING data once someone has studied its misses (`tuned_since` set); until then it is HELD OUT and
nothing may learn from it. The corpus test and `cpi build-model` both read the corpora through this module,
so the model can only ever be trained on what the test gates as training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from schemas import SanitisedIntel

# The repository's corpora; an installed package has none (pass the directory instead).
DEFAULT_CORPORA_DIR = Path(__file__).resolve().parents[2] / "tests" / "unit" / "router"
MAIN_CORPUS = "corpus.yaml"
MANIFEST = "batches.yaml"
RECEIVED_ON = date(2026, 11, 20)
_LABELS = {"id", "outcomes", "priority", "held_out"}


@dataclass(frozen=True)
class Batch:
    """One labelled file: where it came from, since when it is training data, and its untuned figures."""

    file: str
    origin: str
    # The rules version from which its misses were studied (so it is gated), or None while it is held out.
    tuned_since: str | None
    # Outcome-set and priority agreement measured before anyone tuned on it, for the record.
    untuned: str

    @property
    def held_out(self) -> bool:
        return self.tuned_since is None


def batches(directory: Path = DEFAULT_CORPORA_DIR) -> list[Batch]:
    """The batches listed in the manifest, in the order they were written."""
    listed: list[dict[str, Any]] = yaml.safe_load((directory / MANIFEST).read_text(encoding="utf-8"))
    return [Batch(file=item["file"], origin=item["origin"], tuned_since=item["tuned_since"],
                  untuned=item["untuned"]) for item in listed]


def training_files(directory: Path = DEFAULT_CORPORA_DIR) -> list[str]:
    """The main corpus and every batch that is training data; never a held-out batch."""
    return [MAIN_CORPUS, *(batch.file for batch in batches(directory) if not batch.held_out)]


def cases(path: Path) -> list[dict[str, Any]]:
    """The labelled cases of one file, as written."""
    loaded: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def intel_of(number: int, case: dict[str, Any]) -> SanitisedIntel:
    """A case as the SanitisedIntel the router receives (id from `number`; how_known and lawful_basis defaulted)."""
    fields = {key: value for key, value in case.items() if key not in _LABELS}
    fields.setdefault("how_known", "told_by_third_party")
    fields.setdefault("lawful_basis", "safeguarding")
    return SanitisedIntel.model_validate(
        {**fields, "intel_id": f"{number:032x}", "received_on": RECEIVED_ON, "redaction_count": 0}
    )
