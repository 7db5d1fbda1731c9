"""Agreement of the router's rules with a hand-labelled corpus of sanitised intelligence."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import Category, Outcome, SanitisedIntel
from services.router.domain import RoutingRules, assess, load_rules

CORPUS = Path(__file__).with_name("corpus.yaml")
# Written from the routing policy before rules 2026.11.2; reported on its own. Since rules 2026.11.3 it is
# TRAINING data (its misses were studied and the rules changed for them), so it no longer estimates how
# the rules do on unseen reports. It is gated like the main corpus, so the fixes are not lost.
HELD_OUT_2 = Path(__file__).with_name("heldout_2.yaml")
# Written from the routing policy and committed before rules 2026.11.3 were written. Since rules 2026.11.4 it
# is TRAINING data (its misses were studied and the rules changed for them); it passes the thresholds, so it
# is gated like the main corpus and batch 2. Its untuned figures are kept for the record: baseline under
# 2026.11.2 and the held-out figure under 2026.11.3.
HELD_OUT_3 = Path(__file__).with_name("heldout_3.yaml")
HELD_OUT_3_BASELINE = ("2026.11.2", 0.328, 0.569)
HELD_OUT_3_UNTUNED = ("2026.11.3", 0.500, 0.655)
# Written from the routing policy and committed before rules 2026.11.4 were written. Since rules 2026.11.5 it
# is TRAINING data (its misses were studied and the rules changed for them); it passes the thresholds, so it
# is gated like the others. Its untuned figures are kept for the record: baseline under 2026.11.3 and the
# held-out figure under 2026.11.4 (both on the labels as they then stood).
HELD_OUT_4 = Path(__file__).with_name("heldout_4.yaml")
HELD_OUT_4_BASELINE = ("2026.11.3", 0.640, 0.720)
HELD_OUT_4_UNTUNED = ("2026.11.4", 0.680, 0.740)
# Written from the routing policy and committed before rules 2026.11.5 were written; never tuned on (its
# misses are not printed). This is the honest estimate on unseen reports: printed, deliberately not gated.
# Baseline under 2026.11.4, on its labels after the one relabel for the 2026.11.5 policy decision
# (see heldout_5.yaml): 71.1% and 81.6% (68.4% and 81.6% on the labels as first committed).
HELD_OUT_5 = Path(__file__).with_name("heldout_5.yaml")
HELD_OUT_5_BASELINE = ("2026.11.4", 0.711, 0.816)
RECEIVED_ON = date(2026, 11, 20)
OUTCOME_THRESHOLD = 0.90
PRIORITY_THRESHOLD = 0.85


def _cases(path: Path = CORPUS) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _intel(number: int, case: dict[str, Any]) -> SanitisedIntel:
    fields = {key: value for key, value in case.items() if key not in {"id", "outcomes", "priority", "held_out"}}
    fields.setdefault("how_known", "told_by_third_party")
    fields.setdefault("lawful_basis", "safeguarding")
    return SanitisedIntel.model_validate(
        {**fields, "intel_id": f"{number:032x}", "received_on": RECEIVED_ON, "redaction_count": 0}
    )


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules()


def test_corpus_is_broad_enough() -> None:
    """The corpus has at least 120 distinct cases covering all eight categories and all four outcomes."""
    cases = _cases()
    assert len(cases) >= 120
    assert len({case["id"] for case in cases}) == len(cases)
    assert {c for case in cases for c in case["categories"]} == {c.value for c in Category}
    assert {o for case in cases for o in case["outcomes"]} == {o.value for o in Outcome}
    assert any(len(case["outcomes"]) == 3 for case in cases)
    assert Counter(case["priority"] for case in cases).keys() == {"high", "medium", "low", "none"}


def test_held_out_2_is_broad_and_distinct() -> None:
    """The second held-out batch has at least 40 cases, all eight categories and all four outcomes and
    priorities, and no id shared with the main corpus."""
    cases = _cases(HELD_OUT_2)
    assert len(cases) >= 40
    assert len({case["id"] for case in cases}) == len(cases)
    assert not {case["id"] for case in cases} & {case["id"] for case in _cases()}
    assert {c for case in cases for c in case["categories"]} == {c.value for c in Category}
    assert {o for case in cases for o in case["outcomes"]} == {o.value for o in Outcome}
    assert Counter(case["priority"] for case in cases).keys() == {"high", "medium", "low", "none"}


def test_held_out_3_is_broad_and_distinct() -> None:
    """The third held-out batch has at least 50 cases, all eight categories, all four outcomes and
    priorities, adults and children, and no id shared with the main corpus or batch 2."""
    cases = _cases(HELD_OUT_3)
    assert len(cases) >= 50
    assert len({case["id"] for case in cases}) == len(cases)
    assert not {case["id"] for case in cases} & {case["id"] for case in _cases() + _cases(HELD_OUT_2)}
    assert {c for case in cases for c in case["categories"]} == {c.value for c in Category}
    assert {o for case in cases for o in case["outcomes"]} == {o.value for o in Outcome}
    assert Counter(case["priority"] for case in cases).keys() == {"high", "medium", "low", "none"}
    ages = [s.get("approx_age") for case in cases for s in case.get("subjects", []) if s.get("approx_age") is not None]
    assert any(age < 18 for age in ages) and any(age >= 18 for age in ages)


def test_held_out_4_is_broad_and_distinct() -> None:
    """The fourth held-out batch has at least 40 cases, all eight categories, all four outcomes and
    priorities, adults and children, and no id shared with any other batch."""
    cases = _cases(HELD_OUT_4)
    assert len(cases) >= 40
    assert len({case["id"] for case in cases}) == len(cases)
    others = _cases() + _cases(HELD_OUT_2) + _cases(HELD_OUT_3)
    assert not {case["id"] for case in cases} & {case["id"] for case in others}
    assert {c for case in cases for c in case["categories"]} == {c.value for c in Category}
    assert {o for case in cases for o in case["outcomes"]} == {o.value for o in Outcome}
    assert Counter(case["priority"] for case in cases).keys() == {"high", "medium", "low", "none"}
    ages = [s.get("approx_age") for case in cases for s in case.get("subjects", []) if s.get("approx_age") is not None]
    assert any(age < 18 for age in ages) and any(age >= 18 for age in ages)


def _agreement(cases: list[dict[str, Any]], rules: RoutingRules) -> tuple[float, float, list[str]]:
    """Share of cases with exactly the labelled outcome set, share with the labelled priority, and the misses."""
    outcome_hits = priority_hits = 0
    misses = []
    for number, case in enumerate(cases):
        decision = assess(_intel(number, case), rules)
        got_outcomes = {outcome.value for outcome in decision.outcomes}
        outcome_right = got_outcomes == set(case["outcomes"])
        priority_right = decision.priority.value == case["priority"]
        outcome_hits += outcome_right
        priority_hits += priority_right
        if not (outcome_right and priority_right):
            misses.append(
                f"  {case['id']}: expected {sorted(case['outcomes'])}/{case['priority']}, "
                f"got {sorted(got_outcomes)}/{decision.priority.value}"
            )
    return outcome_hits / len(cases), priority_hits / len(cases), misses


def test_corpus_agreement(rules: RoutingRules, capsys: pytest.CaptureFixture[str]) -> None:
    """The rules give exactly the labelled outcome set for >= 90% of cases and the labelled priority for >= 85%,
    on the main corpus and batches 2, 3 and 4 (all tuned on).

    Reported on their own as well: batch 1 of held-out cases (in corpus.yaml; tuned on since 2026.11.2),
    batch 2 (heldout_2.yaml; training data since 2026.11.3), batch 3 (heldout_3.yaml; training data since
    2026.11.4), batch 4 (heldout_4.yaml; training data since 2026.11.5) and batch 5 (heldout_5.yaml, written
    before 2026.11.5 and never tuned on: the honest estimate of how the rules do on reports nobody has seen).
    Batch 5 is printed beside its baseline, not gated, and its misses are not printed, so that nobody tunes
    the rules to them by accident.
    """
    cases = _cases()
    outcome_rate, priority_rate, misses = _agreement(cases, rules)
    held_out = [case for case in cases if case.get("held_out")]
    held_outcome, held_priority, _ = _agreement(held_out, rules)
    batch_2 = _cases(HELD_OUT_2)
    batch_2_outcome, batch_2_priority, batch_2_misses = _agreement(batch_2, rules)
    batch_3 = _cases(HELD_OUT_3)
    batch_3_outcome, batch_3_priority, batch_3_misses = _agreement(batch_3, rules)
    batch_4 = _cases(HELD_OUT_4)
    batch_4_outcome, batch_4_priority, batch_4_misses = _agreement(batch_4, rules)
    batch_5 = _cases(HELD_OUT_5)
    batch_5_outcome, batch_5_priority, _ = _agreement(batch_5, rules)
    with capsys.disabled():
        print(
            f"\nrouter corpus ({len(cases)} cases, rules {rules.version}): "
            f"outcome sets exactly right {outcome_rate:.1%}, priority right {priority_rate:.1%}; "
            f"held-out batch 1 ({len(held_out)} cases, tuned on since 2026.11.2): {held_outcome:.1%} and "
            f"{held_priority:.1%}"
        )
        print(
            f"batch 2 ({len(batch_2)} cases, TRAINING data since 2026.11.3, gated): outcome sets exactly right "
            f"{batch_2_outcome:.1%}, priority right {batch_2_priority:.1%}"
        )
        base_version, base_outcome, base_priority = HELD_OUT_3_BASELINE
        untuned_version, untuned_outcome, untuned_priority = HELD_OUT_3_UNTUNED
        print(
            f"batch 3 ({len(batch_3)} cases, TRAINING data since 2026.11.4, gated): outcome sets exactly right "
            f"{batch_3_outcome:.1%}, priority right {batch_3_priority:.1%} (baseline under {base_version}: "
            f"{base_outcome:.1%} and {base_priority:.1%}; held out under {untuned_version}: {untuned_outcome:.1%} "
            f"and {untuned_priority:.1%})"
        )
        base_version, base_outcome, base_priority = HELD_OUT_4_BASELINE
        untuned_version, untuned_outcome, untuned_priority = HELD_OUT_4_UNTUNED
        print(
            f"batch 4 ({len(batch_4)} cases, TRAINING data since 2026.11.5, gated): outcome sets exactly right "
            f"{batch_4_outcome:.1%}, priority right {batch_4_priority:.1%} (baseline under {base_version}: "
            f"{base_outcome:.1%} and {base_priority:.1%}; held out under {untuned_version}: {untuned_outcome:.1%} "
            f"and {untuned_priority:.1%})"
        )
        base_version, base_outcome, base_priority = HELD_OUT_5_BASELINE
        print(
            f"held-out batch 5 ({len(batch_5)} cases, never tuned on, not gated; the honest figure): outcome sets "
            f"exactly right {batch_5_outcome:.1%}, priority right {batch_5_priority:.1%} "
            f"(baseline under {base_version}: {base_outcome:.1%} and {base_priority:.1%})"
        )
        print("\n".join(misses + batch_2_misses + batch_3_misses + batch_4_misses))
    assert outcome_rate >= OUTCOME_THRESHOLD, "\n".join(misses)
    assert priority_rate >= PRIORITY_THRESHOLD, "\n".join(misses)
    assert batch_2_outcome >= OUTCOME_THRESHOLD, "\n".join(batch_2_misses)
    assert batch_2_priority >= PRIORITY_THRESHOLD, "\n".join(batch_2_misses)
    assert batch_3_outcome >= OUTCOME_THRESHOLD, "\n".join(batch_3_misses)
    assert batch_3_priority >= PRIORITY_THRESHOLD, "\n".join(batch_3_misses)
    assert batch_4_outcome >= OUTCOME_THRESHOLD, "\n".join(batch_4_misses)
    assert batch_4_priority >= PRIORITY_THRESHOLD, "\n".join(batch_4_misses)


def test_held_out_5_is_broad_and_distinct() -> None:
    """The fifth held-out batch has at least 35 cases, all eight categories, all four outcomes and
    priorities, adults and children, and no id shared with any other batch."""
    cases = _cases(HELD_OUT_5)
    assert len(cases) >= 35
    assert len({case["id"] for case in cases}) == len(cases)
    others = _cases() + _cases(HELD_OUT_2) + _cases(HELD_OUT_3) + _cases(HELD_OUT_4)
    assert not {case["id"] for case in cases} & {case["id"] for case in others}
    assert {c for case in cases for c in case["categories"]} == {c.value for c in Category}
    assert {o for case in cases for o in case["outcomes"]} == {o.value for o in Outcome}
    assert Counter(case["priority"] for case in cases).keys() == {"high", "medium", "low", "none"}
    ages = [s.get("approx_age") for case in cases for s in case.get("subjects", []) if s.get("approx_age") is not None]
    assert any(age < 18 for age in ages) and any(age >= 18 for age in ages)
