"""The scrubber against labelled corpora of realistic texts, measured for source protection first.

`corpus.yaml` is the main corpus. Each `heldout_N.yaml` was written blind, from the sanitising policy in
DESIGN.md only, by an author who never saw the scrubber, its phrase lists or the other corpora, and was
committed before it was first run. A batch stays HELD OUT until someone studies its misses to change the
scrubber; from then on it is TRAINING data: gated like the main corpus, so the fixes are not lost, but no
longer an estimate of how the scrubber does on text nobody has seen. Held-out batches are printed, not
gated, and their misses are never printed, so that nobody tunes the scrubber to them by accident.

Figures, safety first: source identifiers leaked (of those written in the texts), then self-references
removed and subject facts kept. The scrubbed text is normalised before it is searched, so an identifier
that survived with an invisible character inside it still counts as leaked.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from confusable_homoglyphs.confusables import confusables_data

from schemas import SanitisedIntel, Source
from services.sanitiser.domain import ScrubConfig, load_scrub_config, scrub
from services.sanitiser.residual import DEFAULT_HOLD_THRESHOLD, assess_residual_risk

HERE = Path(__file__).parent
CORPUS = yaml.safe_load((HERE / "corpus.yaml").read_text(encoding="utf-8"))
PHONE_RUN = re.compile(r"\+?[\d(][\d\s().\-]*\d")
MAX_LEAK_RATE = 1 / 400
MIN_SELF_REFS_REMOVED = 0.95
MIN_FACTS_KEPT = 0.97


@dataclass(frozen=True)
class Batch:
    """One labelled file: where it came from, since when it is training data, and its untuned figures."""

    file: str
    origin: str
    # The scrubber change from which its misses were studied (so it is gated), or None while held out.
    tuned_since: str | None
    # Leaks, self-references removed and facts kept before anyone tuned on it, for the record.
    untuned: str
    # A training batch not yet at the bar may not get worse than this many leaks (a ratchet)...
    max_leaks: int | None = None
    # ...nor remove fewer self-references than this.
    min_refs_removed: int | None = None


SESSION_START = "b497d9d"  # the scrubber before it normalised text or knew signatures, nicknames and acronyms
ROUND_1 = "7d3955e"  # scrubbing by class: normalising, variants, structure, own places
ROUND_2 = "87d344f"  # letterheads, disclaimers, colleagues named with their role, self-introductions
ROUND_3 = "6bac0a7"  # closing names, the writer's numbers and branches, other languages' first person
ROUND_4 = "548edc5"  # every message's signature in a chain, registration numbers, someone else's full name
ROUND_5 = "6ce80ec"  # the scrubber when batches 19-21 were promoted to training (2026-12-04)
ROUND_6 = "39ac62a"  # the scrubber when batches 22, 23 and 25 were promoted to training (2026-12-04)
BATCHES = [
    Batch("heldout_1.yaml", "blind: schools, colleges and early years; e-mails, signatures, nicknames",
          "2026-12-02 round 1", f"{SESSION_START}: 95 of 266 leaked; first rewrite: 32 of 266", max_leaks=3),
    Batch("heldout_2.yaml", "blind: every profession; invisible and look-alike characters, all caps, phones",
          "2026-12-02 round 1", f"{SESSION_START}: 87 of 264 leaked; first rewrite: 21 of 264", max_leaks=2),
    Batch("heldout_3.yaml", "blind: health; clinical letters, dictated/typed by, cc lists, forwarded NHS mail",
          "2026-12-02 round 2", f"{SESSION_START}: 99 of 243 leaked; {ROUND_1}: 13 of 243", max_leaks=2),
    Batch("heldout_4.yaml", "blind: housing, councils, probation, youth justice, fire service, clubs, faith",
          "2026-12-02 round 2", f"{SESSION_START}: 79 of 233 leaked; {ROUND_1}: 27 of 233", max_leaks=5),
    Batch("heldout_5.yaml", "blind: voluntary sector and businesses; other languages; very short and long",
          "2026-12-02 round 2", f"{SESSION_START}: 85 of 221 leaked; {ROUND_1}: 27 of 221", max_leaks=9),
    Batch("heldout_6.yaml", "blind, FROZEN final batch: an unselected day's intake, every trap", None,
          f"{SESSION_START}: 60 of 189 leaked; {ROUND_1}: 11; {ROUND_2}: 10; {ROUND_3}: 10"),
    Batch("heldout_7.yaml", "blind: transport and public spaces; incident logs, handovers, forwarded chains",
          "2026-12-02 round 3", f"{SESSION_START}: 109 of 263 leaked; {ROUND_1}: 29; {ROUND_2}: 27", max_leaks=12),
    Batch("heldout_8.yaml", "blind: adult social care, domestic abuse, care and mental health; referral forms",
          "2026-12-02 round 3", f"{SESSION_START}: 59 of 210 leaked; {ROUND_1}: 11; {ROUND_2}: 7", max_leaks=3),
    Batch("heldout_9.yaml", "blind: education beyond schools; names from many backgrounds",
          "2026-12-02 round 3", f"{SESSION_START}: 64 of 157 leaked; {ROUND_1}: 13; {ROUND_2}: 13", max_leaks=5),
    Batch("heldout_10.yaml", "blind: phone-typed, voice-to-text, all caps; many shared-name traps",
          "2026-12-02 round 3", f"{SESSION_START}: 44 of 148 leaked; {ROUND_1}: 5; {ROUND_2}: 5", max_leaks=0),
    Batch("heldout_11.yaml", "blind: money and work; licensing, benefits, debt advice, bank fraud, letting agents",
          "2026-12-02 round 4", f"{SESSION_START}: 67 of 194 leaked; {ROUND_1}: 13; {ROUND_2}: 7; {ROUND_3}: 5",
          max_leaks=2),
    Batch("heldout_12.yaml", "blind: sport, culture and faith groups; club nicknames; WhatsApp forwards",
          "2026-12-02 round 4", f"{SESSION_START}: 94 of 210 leaked; {ROUND_1}: 9; {ROUND_2}: 9; {ROUND_3}: 8",
          max_leaks=5),
    Batch("heldout_13.yaml", "blind: pharmacies, dentists, sexual health, maternity, out-of-hours, NHS 111",
          "2026-12-02 round 4", f"{SESSION_START}: 87 of 226 leaked; {ROUND_1}: 11; {ROUND_2}: 5; {ROUND_3}: 4",
          max_leaks=4),
    Batch("heldout_14.yaml", "blind: extremes; page-long reply chains and letters, and one-liners",
          "2026-12-02 round 4", f"{SESSION_START}: 228 of 476 leaked; {ROUND_1}: 150; {ROUND_2}: 66; {ROUND_3}: 61",
          max_leaks=33),
    Batch("heldout_15.yaml", "blind: multi-agency meeting minutes, attendee lists and action owners",
          "2026-12-02 round 5", f"first run at {ROUND_3}: 9 of 201; {ROUND_4}: 9 of 201", max_leaks=3),
    Batch("heldout_16.yaml", "blind: children's social care, foster and residential care",
          "2026-12-02 round 5", f"first run at {ROUND_3}: 10 of 195; {ROUND_4}: 10 of 195", max_leaks=4),
    Batch("heldout_17.yaml", "blind: retail, hospitality and the gig economy",
          "2026-12-02 round 5", f"first run at {ROUND_3}: 10 of 205; {ROUND_4}: 10 of 205", max_leaks=5),
    Batch("heldout_18.yaml", "blind: rural and coastal; Welsh, Gaelic, Cornish, Irish, Traveller names",
          "2026-12-02 round 5", f"first run at {ROUND_3}: 10 of 198; {ROUND_4}: 10 of 198", max_leaks=6),
    Batch("heldout_19.yaml", "blind: supported and temporary housing; handover logs with staff initials",
          "2026-12-04 round 6", f"{ROUND_5}: 10 of 237 leaked", max_leaks=0),
    Batch("heldout_20.yaml", "blind: schools in multi-academy trusts; CPOMS-style entries, site names",
          "2026-12-04 round 6", f"{ROUND_5}: 24 of 208 leaked", max_leaks=12),
    Batch("heldout_21.yaml", "blind: volunteers and small charities; first names, nicknames, voice notes",
          "2026-12-04 round 6", f"{ROUND_5}: 11 of 173 leaked", max_leaks=2),
    Batch("heldout_22.yaml", "blind: formal writers; solicitors, advisers, tribunals, third-person reports",
          "2026-12-04 round 7", f"written after round 4; first run on the round 5 scrubber; {ROUND_6}: 8 of 263",
          max_leaks=4, min_refs_removed=49),
    Batch("heldout_23.yaml", "blind: GP records, ambulance forms, crisis teams, hospices; Polish, Urdu, Somali",
          "2026-12-04 round 7", f"written after round 5; committed before its first run; {ROUND_6}: 27 of 268",
          max_leaks=10, min_refs_removed=43),
    # Its first two cases were seen on 2026-12-04 while checking the file format, so it could no longer be a
    # clean estimate: it became training data that day.
    Batch("heldout_24.yaml", "blind: pasted from other systems; chat exports, tickets, call transcripts, PDFs",
          "2026-12-04 round 6", f"first run at round 5: 42 of 266; {ROUND_5}: 42; round 6 before studying it: 43",
          max_leaks=29),
    Batch("heldout_25.yaml", "blind: health, social care, schools and probation; raw mail headers, case-system "
          "exports, voice memos, Teams chats, text speak", "2026-12-04 round 7",
          "written 2026-12-04, committed before its first run; first run (b2518d4): 46 of 345 leaked, 16 released; "
          f"{ROUND_6}: 43 of 345", max_leaks=20, min_refs_removed=86),
    Batch("heldout_26.yaml", "blind: charities, faith groups, clubs, shops, hotels, transport, housing, security, "
          "pharmacy, taxi licensing; booking and CRM exports", None,
          "written 2026-12-04, committed before its first run; first run (b2518d4): 50 of 336 leaked, 18 released"),
    Batch("heldout_27.yaml", "blind: GPs, school nurses, health visitors, ED, ambulance, crisis teams; Scotland and "
          "Northern Ireland; letterheads, references, clinical shorthand", None,
          f"written 2026-12-04, committed before its first run; first run ({ROUND_6}): 25 of 223 leaked, 2 released; "
          "round 7: 25 of 223, 2 released"),
    Batch("heldout_28.yaml", "blind: informal writing; voice notes, texts, chats, diaries, reply-all chains, device "
          "signatures, sign-offs by initial or nickname", None,
          f"written 2026-12-04, committed before its first run; first run ({ROUND_6}): 36 of 194 leaked, 21 released; "
          "round 7: 34 of 194, 20 released"),
]


@lru_cache(maxsize=1)
def _latin_look_alikes() -> dict[int, str]:
    """Every character Unicode's confusables data says looks like one ASCII letter or digit."""
    table: dict[int, str] = {}
    for char, glyphs in confusables_data.items():
        if len(char) == 1 and not char.isascii():
            latin = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalnum()]
            if latin:
                table[ord(char)] = latin[0]
    return table


def plain(text: str) -> str:
    """What a reader sees, independently of the code under test: NFKC, no invisible (Cf) characters,
    look-alike letters read as the ASCII they imitate. Leaks are searched for in this form."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    return text.translate(_latin_look_alikes())


def national_digits(phone: str) -> str:
    """+44 20 7946 0958, 020-7946-0958 and 0044 (0)20... all give 2079460958."""
    digits = re.sub(r"\D", "", phone)
    digits = digits.removeprefix("00")
    if phone.strip().startswith("+") or phone.strip().startswith("00"):
        digits = digits.removeprefix("44") if digits.startswith("44") else digits
    return digits.removeprefix("0")


def survives(identifier: str, text: str) -> bool:
    """Case-insensitive, as a whole word (so "Ben" is not found in "Bench")."""
    identifier = plain(identifier).strip()
    return re.search(rf"(?<!\w){re.escape(identifier)}(?!\w)", text, re.IGNORECASE) is not None


def identifiers(source: Source, extra: list[str], original: str, config: ScrubConfig,
                protected: Sequence[str] = ()) -> list[str]:
    """What must not survive: the labelled forms, and the source block's own values written in the text. A
    local part that is a word of a subject's name ("callum@..." beside the subject Callum Reid) is the
    subject's name there, not the source's."""
    local = source.email.rpartition("@")[0]
    found = [str(item) for item in extra]
    candidates = [source.name, source.organisation, source.email]
    subject_words = {word.lower() for fact in protected for word in re.findall(r"\w+", fact)}
    if local.lower() not in config.generic_email_local_parts and local.lower() not in subject_words:
        candidates.append(local)
    for value in candidates:
        if survives(value, original) and value.lower() not in {item.lower() for item in found}:
            found.append(value)
    return found


def phone_leaks(source: Source, text: str) -> list[str]:
    if not source.phone:
        return []
    number = national_digits(source.phone)
    return [run.group() for run in PHONE_RUN.finditer(text) if number in re.sub(r"\D", "", run.group())]


@dataclass
class Figures:
    cases: int = 0
    identifiers: int = 0
    leaked: list[str] = field(default_factory=list)
    refs: int = 0
    refs_removed: int = 0
    facts: int = 0
    facts_kept: int = 0
    misses: list[str] = field(default_factory=list)
    held: int = 0  # cases the residual-risk check holds for the Intelligence Unit
    leaked_released: list[str] = field(default_factory=list)  # leaks in cases not held: these reach the topic

    def line(self, name: str) -> str:
        refs = self.refs_removed / max(self.refs, 1)
        facts = self.facts_kept / max(self.facts, 1)
        return (f"{name}: {self.cases} cases; leaked {len(self.leaked)} of {self.identifiers} source identifiers; "
                f"self-references removed {self.refs_removed}/{self.refs} ({refs:.1%}); "
                f"subject facts kept {self.facts_kept}/{self.facts} ({facts:.1%}); "
                f"held {self.held}, leaks in released cases {len(self.leaked_released)}")


def run_cases(document: dict[str, Any], config: ScrubConfig) -> Figures:
    sources = {key: Source.model_validate(value) for key, value in document["sources"].items()}
    result = Figures()
    for number, case in enumerate(document["cases"]):
        name = case.get("id", f"case {number}")
        source = sources[case["source"]]
        protected = [
            fact
            for subject in case.get("subjects", [])
            for fact in [subject.get("name"), *subject.get("aliases", []), subject.get("address")]
            if fact
        ]
        original = plain(case["text"])
        text, _ = scrub(case["text"], source, config, protected=protected)
        text = plain(text)
        result.cases += 1
        wanted = identifiers(source, case.get("leaks", []), original, config, protected)
        phones = phone_leaks(source, original)
        result.identifiers += len(wanted) + len(phones)
        found = [identifier for identifier in wanted if survives(identifier, text)] + phone_leaks(source, text)
        result.leaked += [f"{name}: {identifier!r}" for identifier in found]
        if held(case, text):
            result.held += 1
        else:
            result.leaked_released += [f"{name}: {identifier!r}" for identifier in found]
        result.misses += [f"{name}: leaked {identifier!r}: {text!r}" for identifier in found]
        for ref in case.get("self_refs", []):
            result.refs += 1
            if survives(str(ref), text):
                result.misses.append(f"{name}: self-reference kept {ref!r}: {text!r}")
            else:
                result.refs_removed += 1
        for fact in case.get("facts", []):
            result.facts += 1
            if plain(str(fact)).lower() in text.lower():
                result.facts_kept += 1
            else:
                result.misses.append(f"{name}: fact lost {fact!r}: {text!r}")
    return result


def held(case: dict[str, Any], text: str) -> bool:
    """Would the sanitiser hold this scrubbed text for the Intelligence Unit rather than publish it?"""
    intel = SanitisedIntel.model_validate({
        "intel_id": "0" * 32, "received_on": "2026-12-01", "categories": ["criminal_exploitation"],
        "subjects": [{"role": "at_risk", **{k: v for k, v in subject.items() if k in ("name", "aliases", "address")}}
                     for subject in case.get("subjects", [])],
        "information": text, "how_known": "witnessed_directly", "lawful_basis": "safeguarding",
        "redaction_count": 0})
    return assess_residual_risk(intel).holds(DEFAULT_HOLD_THRESHOLD)


def load(batch: Batch) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((HERE / batch.file).read_text(encoding="utf-8"))
    return document


@pytest.fixture(scope="module")
def config() -> ScrubConfig:
    return load_scrub_config()


@pytest.fixture(scope="module")
def main_figures(config: ScrubConfig) -> Figures:
    figures = run_cases(CORPUS, config)
    print("\n" + figures.line("main corpus"))
    for miss in figures.misses:
        print("  " + miss)
    return figures


@pytest.fixture(scope="module")
def batch_figures(config: ScrubConfig) -> dict[str, Figures]:
    results = {batch.file: run_cases(load(batch), config) for batch in BATCHES}
    untuned = Figures()
    for batch in BATCHES:
        figures = results[batch.file]
        state = f"training since {batch.tuned_since}" if batch.tuned_since else "HELD OUT"
        print(f"\n{figures.line(batch.file)}  [{state}; {batch.origin}; untuned: {batch.untuned}]")
        if batch.tuned_since:
            for miss in figures.misses:
                print("  " + miss)
        else:
            untuned.cases += figures.cases
            untuned.identifiers += figures.identifiers
            untuned.leaked += figures.leaked
            untuned.refs += figures.refs
            untuned.refs_removed += figures.refs_removed
            untuned.facts += figures.facts
            untuned.facts_kept += figures.facts_kept
            untuned.held += figures.held
            untuned.leaked_released += figures.leaked_released
    if untuned.cases:
        print("\n" + untuned.line("all held-out batches (never tuned on; misses not shown)"))
    return results


def test_corpus_is_large_and_varied() -> None:
    """The main corpus has at least 100 cases from at least 8 kinds of organisation."""
    kinds = {source["organisation_type"] for source in CORPUS["sources"].values()}
    assert len(CORPUS["cases"]) >= 100
    assert len(kinds) >= 8


def test_every_batch_file_is_listed_and_well_formed() -> None:
    """Every heldout file is in BATCHES; every case names a defined source and has a unique id."""
    listed = {batch.file for batch in BATCHES}
    assert {path.name for path in HERE.glob("heldout_*.yaml")} == listed
    ids: set[str] = set()
    for batch in BATCHES:
        document = load(batch)
        for case in document["cases"]:
            assert case["source"] in document["sources"], (batch.file, case.get("id"))
            assert case["id"] not in ids, case["id"]
            ids.add(case["id"])


def test_no_source_identifier_survives_in_the_main_corpus(main_figures: Figures) -> None:
    """Not one source identifier (name, variants, email or its local part, phone in any format,
    organisation and its short forms, role) survives scrubbing in any case of the main corpus."""
    assert main_figures.leaked == []


def test_self_references_are_removed(main_figures: Figures) -> None:
    """At least 95% of the phrases pointing at the writer ("I am her teacher", "our surgery") go."""
    assert main_figures.refs_removed / main_figures.refs >= MIN_SELF_REFS_REMOVED


def test_subject_facts_are_retained(main_figures: Figures) -> None:
    """At least 97% of the subject facts (names, aliases, addresses, places, times) are kept."""
    assert main_figures.facts_kept / main_figures.facts >= MIN_FACTS_KEPT


@pytest.mark.parametrize("batch", [b for b in BATCHES if b.tuned_since], ids=lambda b: b.file)
def test_training_batches_hold_the_bar(batch: Batch, batch_figures: dict[str, Figures]) -> None:
    """A batch already tuned on keeps the issue's bar: at most 1 leak in 400 identifiers and at least 95% of
    self-references removed (or, until it gets there, no worse than it is now), and 97% of facts kept."""
    figures = batch_figures[batch.file]
    allowed = figures.identifiers * MAX_LEAK_RATE if batch.max_leaks is None else batch.max_leaks
    assert len(figures.leaked) <= allowed, figures.leaked
    refs_allowed = figures.refs * MIN_SELF_REFS_REMOVED if batch.min_refs_removed is None else batch.min_refs_removed
    assert figures.refs_removed >= refs_allowed
    assert figures.facts_kept >= figures.facts * MIN_FACTS_KEPT


def test_held_out_batches_are_measured(batch_figures: dict[str, Figures]) -> None:
    """Held-out batches are run and printed (pytest -s), never gated; each has identifiers to find."""
    for batch in BATCHES:
        if batch.tuned_since is None:
            assert batch_figures[batch.file].identifiers > 0, batch.file


def test_leak_check_would_catch_a_leak(config: ScrubConfig) -> None:
    """The leak check itself finds a name, a phone written differently, an email's local part, and a name
    with an invisible character inside it."""
    source = Source.model_validate(CORPUS["sources"]["teacher"])
    case = {"source": "teacher", "text": "sarah KHAN rang from +44 (0)1632-960-001; reply to S.Khan please",
            "leaks": ["S.Khan"]}
    found = run_cases({"sources": {"teacher": CORPUS["sources"]["teacher"]}, "cases": [case]}, config)
    assert found.identifiers == 3  # S.Khan, Sarah Khan, the phone
    assert phone_leaks(source, "+44 (0)1632-960-001")
    assert survives("Khan", plain("Kh\u200ban"))
    assert survives("Khan", plain("Kh\u0430n"))  # a Cyrillic a
    assert survives("s.khan", "reply to S.Khan please")
