"""Agreement of the router's rules with hand-labelled corpora of sanitised intelligence.

`corpus.yaml` is the main corpus. Each `heldout_N.yaml` (listed in batches.yaml) was written from the routing
policy (batches 6 onwards blind, by authors who never saw the rules or the other files, following LABELLING.md)
and committed before it was ever run through the router. A batch stays HELD OUT until someone studies its
misses to change the rules; from then on it is TRAINING data: gated like the main corpus, so the fixes are not
lost, but no longer an estimate of how the rules do on reports nobody has seen. Held-out batches are printed,
not gated, and their misses are not printed, so that nobody tunes the rules to them by accident.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from schemas import Category, Outcome
from services.router.corpora import Batch, batches, intel_of
from services.router.corpora import cases as read_cases
from services.router.domain import RoutingRules, assess, load_rules
from services.router.model import TextModel, load_model

HERE = Path(__file__).parent
OUTCOME_THRESHOLD = 0.90
PRIORITY_THRESHOLD = 0.85


BATCHES = batches(HERE)


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
    # The review flag (the model's second opinion and thin evidence): how often raised, and how often the
    # rules' decision it was raised on was actually wrong.
    # Per case: (rules wrong, under-triaged, safeguarding missed, review reason codes).
    reviews: list[tuple[bool, bool, bool, frozenset[str]]] = field(default_factory=list)

    @property
    def outcome(self) -> float:
        return self.outcome_hits / self.cases

    @property
    def priority(self) -> float:
        return self.priority_hits / self.cases

    def add(self, case: dict[str, Any], outcomes: set[str], priority: str, review: list[str]) -> None:
        """Count one decision (its outcomes, priority and review reason codes) against the case's labels."""
        labelled = set(case["outcomes"])
        wrong = outcomes != labelled or priority != case["priority"]
        self.reviews.append((wrong, case["priority"] == "high" and priority != "high",
                             "safeguarding" in labelled and "safeguarding" not in outcomes, frozenset(review)))
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
        if wrong:
            self.misses.append(f"  {case['id']}: expected {sorted(labelled)}/{case['priority']}, "
                               f"got {sorted(outcomes)}/{priority}")

    def safety(self) -> str:
        return (f"high-risk under-triaged {self.under_triaged} of {self.high}, "
                f"safeguarding missed {self.safeguarding_missed} of {self.safeguarding}")

    def summary(self) -> str:
        return f"{self.safety()}; outcome sets {self.outcome:.1%}, priority {self.priority:.1%}"

    def review_summary(self, leaving_out: frozenset[str] = frozenset()) -> str:
        """How often the flag was raised (by reasons other than `leaving_out`) and how often it was right."""
        flagged = [(wrong, under, missed) for wrong, under, missed, codes in self.reviews if codes - leaving_out]
        right = sum(wrong for wrong, _, _ in flagged)
        errors = sum(wrong for wrong, _, _, _ in self.reviews)
        share = f"{right / len(flagged):.0%}" if flagged else "n/a"
        return (f"review flag raised on {len(flagged)} of {self.cases} ({len(flagged) / self.cases:.1%}), right on "
                f"{right} ({share}: the rules' decision was wrong); it catches {right} of {errors} of the rules' "
                f"errors, {sum(under for _, under, _ in flagged)} of {self.under_triaged} under-triaged, "
                f"{sum(missed for _, _, missed in flagged)} of {self.safeguarding_missed} safeguarding missed")

    def reason_lines(self) -> list[str]:
        codes = sorted({code for *_, found in self.reviews for code in found})
        return [f"    {code:>28}: raised {sum(code in found for *_, found in self.reviews)}, rules wrong on "
                f"{sum(wrong and code in found for wrong, *_, found in self.reviews)}" for code in codes]

    def confusion_lines(self) -> list[str]:
        return [f"    {label:>12}: {counts[0]} right, {counts[1]} missed, {counts[2]} given wrongly"
                for name, label in OUTCOME_NAMES.items() for counts in [self.confusion[name]]]


def _score(cases: list[dict[str, Any]], rules: RoutingRules, model: TextModel, into: Score | None = None) -> Score:
    score = into or Score()
    for number, case in enumerate(cases):
        decision = assess(intel_of(number, case), rules, model=model)
        review = [reason.code for reason in decision.review.reasons] if decision.review else []
        score.add(case, {outcome.value for outcome in decision.outcomes}, decision.priority.value, review)
    return score


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules()


@pytest.fixture(scope="module")
def model() -> TextModel:
    return load_model()


def test_corpus_is_broad_enough() -> None:
    """The corpus has at least 120 distinct cases covering all eight categories and all four outcomes."""
    cases = read_cases(HERE / "corpus.yaml")
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
    paths = [HERE / "corpus.yaml", *(HERE / b.file for b in BATCHES)]
    ids = [case["id"] for path in paths for case in read_cases(path)]
    assert [case_id for case_id, count in Counter(ids).items() if count > 1] == []


@pytest.mark.parametrize("batch", BATCHES, ids=[batch.file for batch in BATCHES])
def test_batch_is_broad(batch: Batch) -> None:
    """Each batch has at least 35 cases, all eight categories, all four outcomes and priorities, and adults
    and children."""
    cases = read_cases(HERE / batch.file)
    assert len(cases) >= 35
    assert {c for case in cases for c in case["categories"]} == {c.value for c in Category}
    assert {o for case in cases for o in case["outcomes"]} == {o.value for o in Outcome}
    assert Counter(case["priority"] for case in cases).keys() == {"high", "medium", "low", "none"}
    ages = [s.get("approx_age") for case in cases for s in case.get("subjects", []) if s.get("approx_age") is not None]
    assert any(age < 18 for age in ages) and any(age >= 18 for age in ages)


def test_corpus_agreement(rules: RoutingRules, model: TextModel, capsys: pytest.CaptureFixture[str]) -> None:
    """Safety first, then agreement. On the main corpus and every batch that is training data, no high-risk
    report is under-triaged and no safeguarding is missed, and the rules give exactly the labelled outcome set
    for >= 90% of cases and the labelled priority for >= 85%. Held-out batches are printed beside their
    history (under-triage, safeguarding missed, agreement, and pooled, a confusion count per outcome), not
    gated, without their misses; with them, how often the review flag was raised and how often it was right
    (the model was trained on training data only, so these are its honest figures)."""
    gated: list[tuple[str, Score]] = []
    lines = []
    corpus = _score(read_cases(HERE / "corpus.yaml"), rules, model)
    gated.append(("corpus.yaml", corpus))
    lines.append(f"router corpus (rules {rules.version}, {corpus.cases} cases): {corpus.summary()}")
    held_out, training = Score(), Score()
    for batch in BATCHES:
        cases = read_cases(HERE / batch.file)
        score = _score(cases, rules, model)
        if batch.tuned_since is None:
            _score(cases, rules, model, into=held_out)
            lines.append(f"HELD OUT {batch.file} ({len(cases)} cases, {batch.origin}; never tuned on): "
                         f"{score.summary()} [{batch.untuned}]")
            lines.append(f"    {score.review_summary()}")
        else:
            _score(cases, rules, model, into=training)
            gated.append((batch.file, score))
            lines.append(f"{batch.file} ({len(cases)} cases, {batch.origin}; training since {batch.tuned_since}): "
                         f"{score.summary()} [{batch.untuned}]")
    lines.append(f"ALL TRAINING BATCHES ({training.cases} cases): {training.summary()}")
    lines.extend(training.confusion_lines())
    if held_out.cases:
        lines.append(f"ALL HELD OUT ({held_out.cases} cases): {held_out.summary()}")
        lines.extend(held_out.confusion_lines())
        lines.append(f"  HELD OUT, second opinion (model {model.version}): {held_out.review_summary()}")
        lines.extend(held_out.reason_lines())
        model_alone = held_out.review_summary(leaving_out=frozenset({"rules_evidence_thin"}))
        lines.append(f"    the model's disagreement alone: {model_alone}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
        print("\n".join(miss for _, score in gated for miss in score.misses))
    for name, score in gated:
        assert score.outcome >= OUTCOME_THRESHOLD, f"{name}\n" + "\n".join(score.misses)
        assert score.priority >= PRIORITY_THRESHOLD, f"{name}\n" + "\n".join(score.misses)
        assert (score.under_triaged, score.safeguarding_missed) == (0, 0), f"{name}: {score.safety()}"
