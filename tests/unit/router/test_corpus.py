"""Agreement of the router's rules with hand-labelled corpora of sanitised intelligence.

`corpus.yaml` is the main corpus. Each `heldout_N.yaml` was written from the routing policy (batches 6 onwards
blind, by authors who never saw the rules or the other files, following LABELLING.md) and committed before it
was ever run through the router. A batch stays HELD OUT until someone studies its misses to change the rules;
from then on it is TRAINING data: gated like the main corpus, so the fixes are not lost, but no longer an
estimate of how the rules do on reports nobody has seen. Held-out batches are printed, not gated, and their
misses are not printed, so that nobody tunes the rules to them by accident.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import Category, Outcome, SanitisedIntel
from services.router.domain import RoutingRules, assess, load_rules

HERE = Path(__file__).parent
RECEIVED_ON = date(2026, 11, 20)
OUTCOME_THRESHOLD = 0.90
PRIORITY_THRESHOLD = 0.85


@dataclass(frozen=True)
class Batch:
    """One labelled file: where it came from, since when it is training data, and its untuned figures."""

    file: str
    origin: str
    # The rules version from which its misses were studied (so it is gated), or None while it is held out.
    tuned_since: str | None
    # Outcome-set and priority agreement measured before anyone tuned on it, for the record.
    untuned: str


BATCHES = [
    Batch("heldout_2.yaml", "from the policy, by the rules' author", "2026.11.3", "baseline 2026.11.1: 51.0% / 66.7%"),
    Batch("heldout_3.yaml", "from the policy, by the rules' author", "2026.11.4",
          "baseline 2026.11.2: 32.8% / 56.9%; held out under 2026.11.3: 50.0% / 65.5%"),
    Batch("heldout_4.yaml", "from the policy, by the rules' author", "2026.11.5",
          "baseline 2026.11.3: 64.0% / 72.0%; held out under 2026.11.4: 68.0% / 74.0%"),
    Batch("heldout_5.yaml", "from the policy, by the rules' author", "2026.11.6",
          "baseline 2026.11.4: 71.1% / 81.6%; held out under 2026.11.5: 76.3% / 81.6%"),
    Batch("heldout_6.yaml", "blind, terse professional notes", "2026.11.6",
          "held out under 2026.11.5: 70.0% / 78.0%; under 2026.11.6 round 1: 74.0% / 78.0%"),
    Batch("heldout_7.yaml", "blind, narrative accounts", "2026.11.6",
          "held out under 2026.11.5: 64.0% / 80.0%; under 2026.11.6 rounds 1-2: 70.0% / 78.0%"),
    Batch("heldout_8.yaml", "blind, web-form reports, mostly adults", "2026.11.6",
          "held out under 2026.11.5: 80.0% / 78.0%; under 2026.11.6 round 3: 86.0% / 80.0%"),
    Batch("heldout_9.yaml", "blind, children's and family services", "2026.11.6",
          "held out under 2026.11.5: 68.0% / 72.0%; under 2026.11.6 round 3: 70.0% / 72.0%"),
    Batch("heldout_10.yaml", "blind, health, adult care and housing, high/medium boundary", "2026.11.7",
          "held out under 2026.11.5: 82.0% / 82.0%; under 2026.11.6 round 4: 84.0% / 88.0%"),
    Batch("heldout_11.yaml", "blind, an unselected day's intake, every kind of sharer", "2026.11.7",
          "held out under 2026.11.5: 68.0% / 78.0%; under 2026.11.6 round 4: 78.0% / 82.0%"),
    Batch("heldout_12.yaml", "blind, MASH-style partnership referrals from a big city", "2026.11.8",
          "held out under 2026.11.5: 76.0% / 80.0%; under 2026.11.7: 86.0% / 88.0%"),
    Batch("heldout_13.yaml", "blind, rural and coastal county", "2026.11.8",
          "held out under 2026.11.5: 86.0% / 90.0%; under 2026.11.7: 92.0% / 90.0%"),
    Batch("heldout_14.yaml", "blind, online and digital harms", "2026.11.8",
          "held out under 2026.11.5: 66.0% / 78.0%; under 2026.11.7: 80.0% / 86.0%"),
    Batch("heldout_15.yaml", "blind, secondary schools, colleges and alternative provision", "2026.11.9",
          "held out under 2026.11.5: 64.0% / 84.0%; under 2026.11.8: 74.0% / 86.0%"),
    Batch("heldout_16.yaml", "blind, night-time economy and transport", "2026.11.9",
          "held out under 2026.11.5: 78.0% / 88.0%; under 2026.11.8: 84.0% / 92.0%"),
    Batch("heldout_17.yaml", "blind, mixed and ambiguous reports, many very short", "2026.11.9",
          "held out under 2026.11.5: 72.0% / 78.0%; under 2026.11.8: 78.0% / 80.0%"),
    Batch("heldout_18.yaml", "blind, probation, youth justice and substance-misuse services", "2026.11.10",
          "held out under 2026.11.8: 82.0% / 84.0%; under 2026.11.9: 86.0% / 88.0%"),
    Batch("heldout_19.yaml", "blind, community and voluntary sector, plain everyday language", "2026.11.10",
          "held out under 2026.11.8: 90.0% / 88.0%; under 2026.11.9: 94.0% / 90.0%"),
    Batch("heldout_20.yaml", "blind, businesses and workplaces", "2026.11.10",
          "held out under 2026.11.8: 78.0% / 80.0%; under 2026.11.9: 92.0% / 90.0%"),
    Batch("heldout_21.yaml", "blind, children's homes and out-of-hours handover notes with abbreviations", "2026.11.10",
          "held out under 2026.11.8: 88.0% / 88.0%; under 2026.11.9: 94.0% / 92.0%"),
    Batch("heldout_22.yaml", "blind, health services, clinical-style notes", None,
          "held out under 2026.11.8: 90.0% / 92.0%; under 2026.11.9 and 2026.11.10: 100.0% / 94.0%"),
    Batch("heldout_23.yaml", "blind, housing and council services", None,
          "held out under 2026.11.8: 90.0% / 90.0%; under 2026.11.9 and 2026.11.10: 98.0% / 96.0%"),
    Batch("heldout_24.yaml", "blind, primary schools, nurseries and early years", None,
          "held out under 2026.11.8: 72.0% / 78.0%; under 2026.11.9 and 2026.11.10: 88.0% / 88.0%"),
    Batch("heldout_25.yaml", "blind, refugee, migrant and minority community organisations", None,
          "held out under 2026.11.8: 84.0% / 80.0%; under 2026.11.9 and 2026.11.10: 86.0% / 82.0%"),
    Batch("heldout_26.yaml", "blind, sport, leisure, faith and community venues", None,
          "first run, 2026.11.10: under-triaged 4 of 19, safeguarding missed 1 of 27; 86.0% / 80.0%"),
    Batch("heldout_27.yaml", "blind, long social-work and adult-care reports with chronologies", None,
          "first run, 2026.11.10: under-triaged 1 of 16, safeguarding missed 0 of 31; 82.0% / 78.0%"),
    # The frozen final test batch: never tuned on, whatever becomes of the others.
    Batch("heldout_28.yaml", "blind, an unselected week's intake (FROZEN final test batch)", None,
          "first run, 2026.11.10: under-triaged 2 of 17, safeguarding missed 0 of 28; 86.0% / 84.0%"),
]


def _cases(path: Path) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _intel(number: int, case: dict[str, Any]) -> SanitisedIntel:
    fields = {key: value for key, value in case.items() if key not in {"id", "outcomes", "priority", "held_out"}}
    fields.setdefault("how_known", "told_by_third_party")
    fields.setdefault("lawful_basis", "safeguarding")
    return SanitisedIntel.model_validate(
        {**fields, "intel_id": f"{number:032x}", "received_on": RECEIVED_ON, "redaction_count": 0}
    )


OUTCOME_NAMES = {"intelligence_log": "intel log", "crime_desk": "crime desk", "safeguarding": "safeguarding",
                 "no_action": "no action"}


@dataclass
class Score:
    """What the rules got right on some labelled cases, safety first: high-risk reports given a lower
    priority (under-triage) and safeguarding missed lead, then agreement, then a confusion count per outcome."""

    cases: int = 0
    outcome_hits: int = 0
    priority_hits: int = 0
    high: int = 0
    under_triaged: int = 0  # labelled high, given medium, low or none
    safeguarding: int = 0
    safeguarding_missed: int = 0
    # outcome -> [labelled and given, labelled but not given, given but not labelled]
    confusion: dict[str, list[int]] = field(default_factory=lambda: {name: [0, 0, 0] for name in OUTCOME_NAMES})
    misses: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> float:
        return self.outcome_hits / self.cases

    @property
    def priority(self) -> float:
        return self.priority_hits / self.cases

    def add(self, case: dict[str, Any], outcomes: set[str], priority: str) -> None:
        labelled = set(case["outcomes"])
        self.cases += 1
        self.outcome_hits += outcomes == labelled
        self.priority_hits += priority == case["priority"]
        if case["priority"] == "high":
            self.high += 1
            self.under_triaged += priority != "high"
        if "safeguarding" in labelled:
            self.safeguarding += 1
            self.safeguarding_missed += "safeguarding" not in outcomes
        for name, counts in self.confusion.items():
            if name in labelled:
                counts[0 if name in outcomes else 1] += 1
            elif name in outcomes:
                counts[2] += 1
        if outcomes != labelled or priority != case["priority"]:
            self.misses.append(f"  {case['id']}: expected {sorted(labelled)}/{case['priority']}, "
                               f"got {sorted(outcomes)}/{priority}")

    def safety(self) -> str:
        return (f"high-risk under-triaged {self.under_triaged} of {self.high}, "
                f"safeguarding missed {self.safeguarding_missed} of {self.safeguarding}")

    def summary(self) -> str:
        return f"{self.safety()}; outcome sets {self.outcome:.1%}, priority {self.priority:.1%}"

    def confusion_lines(self) -> list[str]:
        return [f"    {label:>12}: {counts[0]} right, {counts[1]} missed, {counts[2]} given wrongly"
                for name, label in OUTCOME_NAMES.items() for counts in [self.confusion[name]]]


def _score(cases: list[dict[str, Any]], rules: RoutingRules, into: Score | None = None) -> Score:
    score = into or Score()
    for number, case in enumerate(cases):
        decision = assess(_intel(number, case), rules)
        score.add(case, {outcome.value for outcome in decision.outcomes}, decision.priority.value)
    return score


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules()


def test_corpus_is_broad_enough() -> None:
    """The corpus has at least 120 distinct cases covering all eight categories and all four outcomes."""
    cases = _cases(HERE / "corpus.yaml")
    assert len(cases) >= 120
    assert len({case["id"] for case in cases}) == len(cases)
    assert {c for case in cases for c in case["categories"]} == {c.value for c in Category}
    assert {o for case in cases for o in case["outcomes"]} == {o.value for o in Outcome}
    assert any(len(case["outcomes"]) == 3 for case in cases)
    assert Counter(case["priority"] for case in cases).keys() == {"high", "medium", "low", "none"}


def test_every_labelled_file_is_listed() -> None:
    """A new heldout file cannot be forgotten: every one is in BATCHES, with its provenance."""
    assert sorted(path.name for path in HERE.glob("heldout_*.yaml")) == sorted(batch.file for batch in BATCHES)


def test_case_ids_are_unique_across_every_file() -> None:
    ids = [case["id"] for path in [HERE / "corpus.yaml", *(HERE / b.file for b in BATCHES)] for case in _cases(path)]
    assert [case_id for case_id, count in Counter(ids).items() if count > 1] == []


@pytest.mark.parametrize("batch", BATCHES, ids=[batch.file for batch in BATCHES])
def test_batch_is_broad(batch: Batch) -> None:
    """Each batch has at least 35 cases, all eight categories, all four outcomes and priorities, and adults
    and children."""
    cases = _cases(HERE / batch.file)
    assert len(cases) >= 35
    assert {c for case in cases for c in case["categories"]} == {c.value for c in Category}
    assert {o for case in cases for o in case["outcomes"]} == {o.value for o in Outcome}
    assert Counter(case["priority"] for case in cases).keys() == {"high", "medium", "low", "none"}
    ages = [s.get("approx_age") for case in cases for s in case.get("subjects", []) if s.get("approx_age") is not None]
    assert any(age < 18 for age in ages) and any(age >= 18 for age in ages)


def test_corpus_agreement(rules: RoutingRules, capsys: pytest.CaptureFixture[str]) -> None:
    """Safety first, then agreement. On the main corpus and every batch that is training data, no high-risk
    report is under-triaged and no safeguarding is missed, and the rules give exactly the labelled outcome set
    for >= 90% of cases and the labelled priority for >= 85%. Held-out batches are printed beside their
    history (under-triage, safeguarding missed, agreement, and pooled, a confusion count per outcome), not
    gated, without their misses."""
    gated: list[tuple[str, Score]] = []
    lines = []
    corpus = _score(_cases(HERE / "corpus.yaml"), rules)
    gated.append(("corpus.yaml", corpus))
    lines.append(f"router corpus (rules {rules.version}, {corpus.cases} cases): {corpus.summary()}")
    held_out, training = Score(), Score()
    for batch in BATCHES:
        cases = _cases(HERE / batch.file)
        score = _score(cases, rules)
        if batch.tuned_since is None:
            _score(cases, rules, into=held_out)
            lines.append(f"HELD OUT {batch.file} ({len(cases)} cases, {batch.origin}; never tuned on): "
                         f"{score.summary()} [{batch.untuned}]")
        else:
            _score(cases, rules, into=training)
            gated.append((batch.file, score))
            lines.append(f"{batch.file} ({len(cases)} cases, {batch.origin}; training since {batch.tuned_since}): "
                         f"{score.summary()} [{batch.untuned}]")
    lines.append(f"ALL TRAINING BATCHES ({training.cases} cases): {training.summary()}")
    lines.extend(training.confusion_lines())
    if held_out.cases:
        lines.append(f"ALL HELD OUT ({held_out.cases} cases): {held_out.summary()}")
        lines.extend(held_out.confusion_lines())
    with capsys.disabled():
        print("\n" + "\n".join(lines))
        print("\n".join(miss for _, score in gated for miss in score.misses))
    for name, score in gated:
        assert score.outcome >= OUTCOME_THRESHOLD, f"{name}\n" + "\n".join(score.misses)
        assert score.priority >= PRIORITY_THRESHOLD, f"{name}\n" + "\n".join(score.misses)
        assert (score.under_triaged, score.safeguarding_missed) == (0, 0), f"{name}: {score.safety()}"
