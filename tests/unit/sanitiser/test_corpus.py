"""The scrubber against a corpus of realistic texts: no source identifier may survive, and the
figures for self-references removed and subject facts kept are printed (pytest -s to see them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import Source
from services.sanitiser.domain import ScrubConfig, load_scrub_config, scrub

CORPUS = yaml.safe_load((Path(__file__).with_name("corpus.yaml")).read_text(encoding="utf-8"))
PHONE_RUN = re.compile(r"\+?[\d(][\d\s().\-]*\d")


def national_digits(phone: str) -> str:
    """+44 20 7946 0958, 020-7946-0958 and 0044 (0)20... all give 2079460958."""
    digits = re.sub(r"\D", "", phone)
    digits = digits.removeprefix("00")
    if phone.strip().startswith("+") or phone.strip().startswith("00"):
        digits = digits.removeprefix("44") if digits.startswith("44") else digits
    return digits.removeprefix("0")


def survives(identifier: str, text: str) -> bool:
    """Case-insensitive, as a whole word (so "Ben" is not found in "Bench")."""
    return re.search(rf"(?<!\w){re.escape(identifier)}(?!\w)", text, re.IGNORECASE) is not None


def leaks(source: Source, extra: list[str], text: str, config: ScrubConfig) -> list[str]:
    """Every source identifier still in `text`: names, variants, email, its local part, phone."""
    local = source.email.rpartition("@")[0]
    found = [
        identifier
        for identifier in [source.name, source.organisation, source.email, *extra]
        if survives(identifier, text)
    ]
    if local.lower() not in config.generic_email_local_parts and survives(local, text):
        found.append(local)
    if source.phone:
        number = national_digits(source.phone)
        for run in PHONE_RUN.finditer(text):
            if number in re.sub(r"\D", "", run.group()):
                found.append(run.group())
    return found


def run_corpus(config: ScrubConfig) -> dict[str, Any]:
    sources = {key: Source.model_validate(value) for key, value in CORPUS["sources"].items()}
    leaked: list[str] = []
    refs_total = refs_removed = facts_total = facts_kept = 0
    for number, case in enumerate(CORPUS["cases"]):
        source = sources[case["source"]]
        protected = [
            fact
            for subject in case.get("subjects", [])
            for fact in [subject.get("name"), *subject.get("aliases", []), subject.get("address")]
            if fact
        ]
        text, _ = scrub(case["text"], source, config, protected=protected)
        found = leaks(source, case.get("leaks", []), text, config)
        leaked += [f"case {number}: {identifier!r} in {text!r}" for identifier in found]
        refs = case.get("self_refs", [])
        refs_total += len(refs)
        refs_removed += sum(not survives(ref, text) for ref in refs)
        facts = [str(fact) for fact in case.get("facts", [])]
        facts_total += len(facts)
        kept = [fact for fact in facts if str(fact).lower() in text.lower()]
        facts_kept += len(kept)
        for fact in set(facts) - set(kept):
            print(f"case {number}: fact lost {fact!r}: {text!r}")
        for ref in refs:
            if survives(ref, text):
                print(f"case {number}: self-reference kept {ref!r}: {text!r}")
    return {
        "cases": len(CORPUS["cases"]),
        "leaked": leaked,
        "refs": (refs_removed, refs_total),
        "facts": (facts_kept, facts_total),
    }


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    result = run_corpus(load_scrub_config())
    removed, refs = result["refs"]
    kept, facts = result["facts"]
    print(
        f"\ncorpus: {result['cases']} cases; source identifiers leaked: {len(result['leaked'])}; "
        f"self-references removed: {removed}/{refs} ({removed / refs:.1%}); "
        f"subject facts retained: {kept}/{facts} ({kept / facts:.1%})"
    )
    return result


def test_corpus_is_large_and_varied() -> None:
    """The corpus has at least 100 cases from at least 8 kinds of organisation."""
    kinds = {source["organisation_type"] for source in CORPUS["sources"].values()}
    assert len(CORPUS["cases"]) >= 100
    assert len(kinds) >= 8


def test_no_source_identifier_survives(figures: dict[str, Any]) -> None:
    """Not one source identifier (name, variants, email or its local part, phone in any format,
    organisation and its short forms, role) survives scrubbing in any case."""
    assert figures["leaked"] == []


def test_self_references_are_removed(figures: dict[str, Any]) -> None:
    """At least 95% of the phrases pointing at the writer ("I am her teacher", "our surgery") go."""
    removed, total = figures["refs"]
    assert removed / total >= 0.95


def test_subject_facts_are_retained(figures: dict[str, Any]) -> None:
    """At least 95% of the subject facts (names, aliases, addresses, places, times) are kept."""
    kept, total = figures["facts"]
    assert kept / total >= 0.95


def test_leak_check_would_catch_a_leak() -> None:
    """The leak check itself finds a name, a phone written differently and an email's local part."""
    source = Source.model_validate(CORPUS["sources"]["teacher"])
    text = "sarah KHAN rang from +44 (0)1632-960-001; reply to S.Khan please"
    found = leaks(source, [], text, load_scrub_config())
    assert "Sarah Khan" in found
    assert "s.khan" in found
    assert any("1632" in item for item in found)
