"""Sanitising, pure: strip every trace of the source from free text and build the SanitisedIntel.

The scrubber works on spans: every rule (the source's names, email, phone, organisation, role,
and first-person or setting references) finds spans in the original text, spans that touch are
merged, and each merged span becomes one REDACTION_MARKER. Facts about subjects are kept: a
bare name token that the source shares with a subject survives only inside a longer protected
subject fact ("Amir Khan" stays when the source is "Sarah Khan"); everything else that points
at the source goes, because a leaked source is worse than a lost word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path

import yaml
from confusable_homoglyphs.confusables import confusables_data
from nicknames import NickNamer
from pydantic import BaseModel, ConfigDict, field_validator

from schemas import Location, SanitisedIntel, Source, Subject, SubmissionContent, Vehicle
from schemas.base import normalise_text

REDACTION_MARKER = "[source redacted]"
DEFAULT_PHRASES = Path(__file__).with_name("scrub_phrases.yaml")

# Limits of the contract fields the scrubbed text goes back into (schemas/base.py, intel.py).
_SHORT_TEXT, _TAG, _DESCRIPTION, _INFORMATION, _REGISTRATION = 200, 100, 2000, 20_000, 16


class ScrubConfig(BaseModel):
    """The phrase lists the scrubber uses; see scrub_phrases.yaml for what each one means."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    titles: tuple[str, ...]
    name_particles: frozenset[str]
    given_name_variants: dict[str, tuple[str, ...]]
    common_words: frozenset[str]
    organisation_generic_words: frozenset[str]
    organisation_stop_words: frozenset[str]
    organisation_leading_words: tuple[str, ...]
    generic_email_domains: frozenset[str]
    generic_email_local_parts: frozenset[str]
    determiners: tuple[str, ...]
    role_modifiers: tuple[str, ...]
    role_families: tuple[tuple[str, ...], ...]
    settings: tuple[str, ...]
    setting_parts: tuple[str, ...]
    relations: tuple[str, ...]
    self_references: tuple[str, ...]
    first_person_role_leads: tuple[str, ...]
    first_person: tuple[str, ...]
    organisation_abbreviations: dict[str, tuple[str, ...]]
    short_form_exclusions: frozenset[str]
    workplaces: tuple[str, ...]
    header_labels: tuple[str, ...]
    by_lines: tuple[str, ...]
    sign_offs: tuple[str, ...]
    role_heads: frozenset[str]
    organisation_settings: frozenset[str]
    street_words: tuple[str, ...]
    role_abbreviations: dict[str, tuple[str, ...]]
    short_name_suffixes: tuple[str, ...]
    colleague_titles: tuple[str, ...]
    colleague_role_acronyms: tuple[str, ...]
    colleague_words: tuple[str, ...]
    branch_words: tuple[str, ...]
    first_person_other_languages: tuple[str, ...]
    roles_other_languages: tuple[str, ...]
    role_settings: dict[str, tuple[str, ...]]
    record_systems: tuple[str, ...]

    @field_validator(
        "name_particles",
        "common_words",
        "organisation_generic_words",
        "organisation_stop_words",
        "generic_email_domains",
        "generic_email_local_parts",
        "short_form_exclusions",
        "role_heads",
        "organisation_settings",
    )
    @classmethod
    def _lower_case(cls, words: frozenset[str]) -> frozenset[str]:
        # These are looked up with word.lower(), so store them that way whatever the file says.
        return frozenset(word.lower() for word in words)

    @cached_property
    def _shared(self) -> _Shared:
        """What depends only on the phrase lists, compiled once per config."""
        return _shared(self)


def read_scrub_config(path: Path | None = None) -> ScrubConfig:
    """The phrase lists as written (default: scrub_phrases.yaml beside this module), nothing compiled."""
    with (path or DEFAULT_PHRASES).open(encoding="utf-8") as handle:
        return ScrubConfig.model_validate(yaml.safe_load(handle))


def load_scrub_config(path: Path | None = None) -> ScrubConfig:
    """Read the phrase lists and compile what every source shares (the shared rules, the look-alike
    table, the nicknames data) now, as the router compiles its term index when its rules load: a worker
    pays for it at start-up, not on its first report."""
    config = read_scrub_config(path)
    _ = config._shared  # the cached property compiles the shared rules
    _look_alikes()
    _nicknamer()
    return config


def scrub(
    text: str, source: Source, config: ScrubConfig, *, protected: Iterable[str] = ()
) -> tuple[str, int]:
    """Remove every identifier of `source` and every reference to the writer from `text`.

    Returns the scrubbed text and how many REDACTION_MARKERs it now holds. `protected` are
    subject facts (names, aliases, addresses, registrations) kept intact where they occur.
    """
    return _Scrubber(source, config, protected).scrub(text)


def sanitise(
    content: SubmissionContent,
    source: Source,
    *,
    intel_id: str,
    received_on: date,
    config: ScrubConfig,
) -> SanitisedIntel:
    """Build the SanitisedIntel: allowed fields copied, every free-text field scrubbed.

    Nothing of `source` is copied; neither are lawful_basis_detail, caldicott_guardian_consulted,
    other_agencies_informed or idempotency_key, which can point at the source's organisation.
    """
    scrubber = _Scrubber(source, config, _subject_facts(content))
    count = 0

    def clean(value: str, limit: int, *, facts_only: bool = False) -> str:
        nonlocal count
        scrubbed, found = scrubber.scrub(value, facts_only=facts_only)
        count += found
        # A marker can be longer than what it replaced; never break the contract's length limit.
        # "..." rather than "…", which the contracts' NFKC would widen to three characters anyway.
        return scrubbed if len(scrubbed) <= limit else scrubbed[: limit - 3] + "..."

    def maybe(value: str | None, limit: int, *, facts_only: bool = False) -> str | None:
        return None if value is None else clean(value, limit, facts_only=facts_only)

    subjects = [
        Subject(
            role=subject.role,
            name=maybe(subject.name, _SHORT_TEXT, facts_only=True),
            aliases=[clean(alias, _TAG, facts_only=True) for alias in subject.aliases],
            date_of_birth=subject.date_of_birth,
            approx_age=subject.approx_age,
            gender=maybe(subject.gender, _TAG, facts_only=True),
            address=maybe(subject.address, _DESCRIPTION, facts_only=True),
            description=maybe(subject.description, _DESCRIPTION),
        )
        for subject in content.subjects
    ]
    locations = [
        Location(description=clean(location.description, _DESCRIPTION), postcode=location.postcode)
        for location in content.locations
    ]
    vehicles = []
    for vehicle in content.vehicles:
        registration = maybe(vehicle.registration, _REGISTRATION, facts_only=True)
        if registration is not None and registration != vehicle.registration:
            registration = None  # a marker does not fit a registration; a half plate is no fact
        vehicles.append(
            Vehicle(
                registration=registration,
                make=maybe(vehicle.make, _TAG, facts_only=True),
                model=maybe(vehicle.model, _TAG, facts_only=True),
                colour=maybe(vehicle.colour, _TAG, facts_only=True),
                description=maybe(vehicle.description, _DESCRIPTION),
            )
        )
    information = clean(content.information, _INFORMATION)
    return SanitisedIntel(
        intel_id=intel_id,
        received_on=received_on,
        categories=content.categories,
        subjects=subjects,
        locations=locations,
        vehicles=vehicles,
        information=information,
        how_known=content.how_known,
        when_observed=content.when_observed,
        subject_aware=content.subject_aware,
        lawful_basis=content.lawful_basis,
        redaction_count=count,
    )


def _subject_facts(content: SubmissionContent) -> list[str]:
    facts: list[str | None] = []
    for subject in content.subjects:
        facts += [subject.name, *subject.aliases, subject.address]
    facts += [vehicle.registration for vehicle in content.vehicles]
    facts += [location.postcode for location in content.locations]
    return [fact for fact in facts if fact]


@dataclass(frozen=True)
class _Prefix:
    """Words just before a match that belong to it, found by a pattern ending at the match; the word
    right before the match is looked up first, since for most matches it is none of the prefix's words."""

    pattern: re.Pattern[str]
    last_words: frozenset[str]

    def search(self, text: str, endpos: int, words: int = 5) -> re.Match[str] | None:
        """The prefix ending at `endpos`, looked for in the few words before it."""
        before = text[max(0, endpos - 30):endpos].rstrip(" \t\n.(").rsplit(None, 1)
        last = before[-1].lstrip("([\"'\u2018\u201c").lower() if before else ""  # "(crewmate" Ioana
        if not last or (last not in self.last_words and not last.isdigit()):
            return None
        return self.pattern.search(text, _words_back(text, endpos, words), endpos)


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    protectable: bool = False  # may survive inside a longer protected subject fact
    first_person: bool = False  # grammar of the writer: not applied inside quotation marks
    # Words just before a match that belong to it ("Mrs" Khan, "the senior" housing officer),
    # kept out of the per-source patterns so that those stay small and quick to compile.
    prefix: _Prefix | None = None
    # Words just after a match that belong to it ("Kelby" Uni, "Lakeside" CAMHS team, an extension).
    suffix: re.Pattern[str] | None = None
    # Lower-case strings one of which the text must hold for the rule to find anything: a quick test
    # that spares most texts the rules about headers, sign-offs and "cc" lines they do not have.
    clues: tuple[str, ...] = ()
    # The match gives way to any subject fact it touches ("this is Jayden" names the subject, not the writer).
    facts_win: bool = False
    # For a lone name of the source's: the source's own name words. Beside another capitalised name it is
    # someone else's ("Hodan Abdi" when the source is Hodan Warsame; "Amir Khan" when she is Sarah Khan).
    own_words: frozenset[str] | None = None
    # It finds the writer's colleagues by name: a name it finds is provenance wherever else it is written
    # ("Kelly (front desk)" and later "Kelly saw him"; "07:30 Jade P" on a rota and "Jade said").
    names_people: bool = False

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            yield match.span()


# A run of digits and the separators people put in phone numbers.
_PHONE_RUN = re.compile(r"[\d(][\d\s().\-]*\d")
_UK_PREFIXES = ("00440", "0044", "440", "44", "0")  # before a UK national number


_DIGIT_WORDS = {"oh": "0", "zero": "0", "nought": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
_SPOKEN_DIGIT = rf"(?:(?:double|triple)[ \t\-]*)?(?:{'|'.join(_DIGIT_WORDS)})(?![\w])"
# Seven or more digits said as words, as a transcribed voice note writes a phone number.
_SPOKEN_NUMBER = re.compile(rf"(?<![\w\-]){_SPOKEN_DIGIT}(?:[ \t,\-]+{_SPOKEN_DIGIT}){{6,}}", re.IGNORECASE)


def _spoken_digits(spoken: str) -> str:
    """ "oh-seven-seven-double-oh" -> "07700"."""
    digits, repeat = [], 1
    for word in re.findall(r"[a-z]+", spoken.lower()):
        if word in ("double", "triple"):
            repeat = 2 if word == "double" else 3
            continue
        digits.append(_DIGIT_WORDS[word] * repeat)
        repeat = 1
    return "".join(digits)


@dataclass(frozen=True)
class _PhoneRule(_Rule):
    """The source's number however it is written, compared on digits: no pattern per source."""

    number: str = ""  # the UK national number without its 0, or the whole international number
    prefixes: tuple[str, ...] = ()

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for spoken in _SPOKEN_NUMBER.finditer(text):  # a voice note: "oh-seven-seven-double-oh nine..."
            if self.number in _spoken_digits(spoken.group()):
                yield spoken.span()
        for run in self.pattern.finditer(text):
            offsets = [i for i, char in enumerate(run.group()) if char.isdigit()]
            digits = "".join(run.group()[i] for i in offsets)
            found = digits.find(self.number)
            while found != -1:
                lead = next((p for p in self.prefixes if digits[:found].endswith(p)), "")
                start = run.start() + offsets[found - len(lead)]
                start -= text[:start].endswith(("+", "(")) if start else 0
                end = run.start() + offsets[found + len(self.number) - 1] + 1
                yield start, end
                found = digits.find(self.number, found + len(self.number))


@dataclass(frozen=True)
class _Shared:
    title_prefix: _Prefix
    role_prefix: _Prefix
    organisation_prefix: _Prefix
    organisation_suffix: re.Pattern[str]
    not_a_street: str
    street_after: re.Pattern[str]  # a street word after a name: "Kestrel" in "Kestrel Way"
    role_families: list[_Rule]
    appendix: re.Pattern[str]
    rules: list[_Rule]
    source_rules: Callable[[Source], list[_Rule]]
    # Capitalised words a colleague rule finds beside a name that are not the name ("Nurse", "Team").
    not_person_words: frozenset[str]


# Spans separated only by spaces, commas, slashes, dashes or one line break become one marker,
# so "Mrs Patel, the class teacher," or a signature block reads as one removal.
_JOINABLE = re.compile(r"[ \t,/\-\u2013\u2014]*(?:\n[ \t,/\-\u2013\u2014]*)?")
# A double-quoted passage: the words of whoever is quoted, so their "I" and "my" stay.
_QUOTED = re.compile(r'(?<![^\s(\[])"(?=\S)[^"]{1,2000}?(?<=\S)"(?!\w)|“[^”]{1,2000}”')
_APOSTROPHE = r"['\u2019]"
_POSSESSIVE = rf"(?:{_APOSTROPHE}s)?"  # "Mrs Khan's class"


class _Scrubber:
    """The rules for one source and one set of subject facts, compiled once and reused."""

    def __init__(self, source: Source, config: ScrubConfig, protected: Iterable[str]) -> None:
        self._identity = config._shared.source_rules(source)
        self._all = self._identity + config._shared.rules
        self._appendix = config._shared.appendix
        self._not_person_words = config._shared.not_person_words
        self._street_after = config._shared.street_after
        self._common_words = config.common_words
        self._facts = sorted({_loose(normalise(fact.strip())) for fact in protected if len(fact.strip()) >= 2},
                             key=len)

    def scrub(self, text: str, *, facts_only: bool = False) -> tuple[str, int]:
        """facts_only: the text is a subject fact (a name, an address), not the writer's prose,
        so only the source's identifiers are removed, not first-person words."""
        text = normalise(text)
        rules = self._identity if facts_only else self._all
        lowered = text.lower()
        guarded = _fact_spans(text, self._facts)
        quoted = [m.span() for m in _QUOTED.finditer(text)]
        spans: list[tuple[int, int]] = []
        people: set[str] = set()
        for rule in rules:
            if rule.clues and not any(clue in lowered for clue in rule.clues):
                continue
            for start, end in rule.spans(text):
                if start == end:
                    continue
                if rule.prefix and (before := rule.prefix.search(text, start)) and before.start() < start:
                    start = before.start()
                elif rule.own_words is not None and _someone_else(text, start, end, rule.own_words):
                    continue  # no title before it, and another name beside it: someone else's name
                if rule.suffix and (after := rule.suffix.match(text, end)):
                    end = after.end()
                if rule.protectable and any(
                    s <= start and end <= e and e - s > end - start for s, e in guarded
                ):
                    continue
                if rule.first_person and any(s <= start and end <= e for s, e in quoted):
                    continue
                if rule.facts_win and any(s < end and start < e for s, e in guarded):
                    continue
                spans.append((start, end))
                if rule.names_people:
                    people.update(_person_words(text[start:end], self._not_person_words))
        spans += _elsewhere(text, people, guarded, self._street_after, self._common_words)
        if not facts_only:
            spans += _signature_block(text, spans, guarded) + _letterhead(text, spans, guarded)
            spans = [self._with_appendix(text, start, end, guarded) for start, end in spans]
        if not spans:
            return text, 0
        spans.sort()
        merged = [spans[0]]
        for start, end in spans[1:]:
            last_start, last_end = merged[-1]
            if start <= last_end or _JOINABLE.fullmatch(text, last_end, start):
                merged[-1] = (last_start, max(last_end, end))
            else:
                merged.append((start, end))
        pieces, position = [], 0
        for start, end in merged:
            pieces += [text[position:start], REDACTION_MARKER]
            position = end
        pieces.append(text[position:])
        return "".join(pieces), len(merged)


    def _with_appendix(self, text: str, start: int, end: int, guarded: list[tuple[int, int]]) -> tuple[int, int]:
        """What is written straight after the writer's identity is about the writer: "[name], Scams team",
        "[name] - Prevention Team", "[name], coordinator", "[org] (the barbers on Station Parade)"."""
        while (after := self._appendix.match(text, end)) and after.end() > end:
            if any(s < after.end() and after.start() < e for s, e in guarded):
                break
            end = after.end()
        return start, end


# A capitalised word that can be a person's name: not an acronym, not a one-letter initial.
_PERSON_WORD = re.compile(r"(?<![\w'\u2019\-])[A-Z\u00c0-\u017d][a-z\u00df-\u017e'\u2019\-]{2,}(?![\w'\u2019\-])")


_CALENDAR_WORDS = ("monday tuesday wednesday thursday friday saturday sunday january february march april may june "
                   "july august september october november december today tonight yesterday tomorrow").split()


def _person_words(found: str, not_names: frozenset[str]) -> set[str]:
    """The words of a colleague's name in what a rule found ("Kelly" in "Kelly (front desk)")."""
    return {word for word in _PERSON_WORD.findall(found)
            if word.lower() not in _NOT_NAMES and word.lower() not in not_names}


_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s+|\n\s*)\Z")


def _elsewhere(text: str, people: set[str], guarded: list[tuple[int, int]], street_after: re.Pattern[str],
               common_words: frozenset[str]) -> list[tuple[int, int]]:
    """Every other place a colleague's name is written, exactly as capitalised, unless it is in a subject fact
    or names a street ("Dave Kestrel Depot" in a chat, and "the Kestrel Way stop"). A name that is also a word
    ("Jade", "Will") counts only inside a sentence, where a capital says it is a name."""
    if not people:
        return []
    return [m.span() for m in _PERSON_WORD.finditer(text)
            if m.group() in people and not street_after.match(text, m.end())
            and not any(s < m.end() and m.start() < e for s, e in guarded)
            and not (m.group().lower() in common_words and _SENTENCE_START.search(text, max(0, m.start() - 3),
                                                                                  m.start()))]


# The next or previous capitalised word, across a quoted nickname ("Robert 'Robbie' Nolan").
_NEXT_NAME = re.compile(r"['\u2019\"]?[ \t]+(?:['\u2018\"\u201c][^'\u2019\"\u201d\n]{1,20}['\u2019\"\u201d][ \t]+)?"
                        r"([A-Z][a-z'\u2019\-]{1,})\b")
_PREVIOUS_NAME = re.compile(r"(?:[a-z,;(][ \t]+|^)([A-Z][a-z'\u2019\-]{1,})[ \t]+"
                            r"(?:['\u2018\"\u201c][^'\u2019\"\u201d\n]{1,20}['\u2019\"\u201d][ \t]+)?"
                            r"['\u2018\"\u201c]?\Z")


def _someone_else(text: str, start: int, end: int, own_words: frozenset[str]) -> bool:
    """Is this lone name of the source's one half of another person's full name? The word after it, or
    the word before it (not at a sentence start, where any word is capitalised), is a capitalised name
    that is not the source's own."""
    after = _NEXT_NAME.match(text, end)
    if after and after.group(1).lower() not in own_words and after.group(1).lower() not in _NOT_NAMES:
        return True
    before = _PREVIOUS_NAME.search(text, max(0, start - 40), start)
    return bool(before and before.group(1).lower() not in own_words and before.group(1).lower() not in _NOT_NAMES)


# Capitalised words that follow or precede a name without being one ("Khan said", "Mrs Khan").
_NOT_NAMES = frozenset(
    "mr mrs ms miss mx dr prof rev fr sir the and or on at in from to of for with by said says told rang "
    "called saw asked is was has had will would also police pc team school council street road lane "
    # the writer's own "I'm Jo from ...": a pronoun before a name is not another name
    "i i'm i\u2019m i've i\u2019ve i'd i'll it's it\u2019s this that thanks cheers regards".split()
)


def _words_back(text: str, start: int, words: int = 5) -> int:
    """Where the five words before `start` begin: as far back as a prefix rule ("one of our own senior",
    "Mrs", "Uni of the") can reach, so it is searched for in a few words, not a long window."""
    at = start
    for _ in range(words):
        at = max(text.rfind(" ", 0, at - 1), text.rfind("\n", 0, at - 1))
        if at <= 0:
            return 0
    return at


_LOOSE = str.maketrans({"\u2019": "'", "-": " ", "\n": " ", "\t": " "})


def _loose(text: str) -> str:
    """Lower case, one kind of apostrophe, hyphens and line breaks as spaces: character for character,
    so that positions in it are positions in the text."""
    lowered = text.lower()
    return (lowered if len(lowered) == len(text) else text).translate(_LOOSE)


def _fact_spans(text: str, facts: list[str]) -> list[tuple[int, int]]:
    """Where the subject facts stand in the text, as whole words (and their possessive): found by plain
    search, since a fact is literal and a pattern compiled per report would cost more than the scrub."""
    if not facts:
        return []
    loose = _loose(text)
    spans = []
    for fact in facts:
        at = loose.find(fact)
        while at != -1:
            end = at + len(fact)
            if (at == 0 or not loose[at - 1].isalnum()) and (end == len(loose) or not loose[end].isalnum()
                                                           or loose.startswith("'s", end)):
                spans.append((at, end + 2 if loose.startswith("'s", end) else end))
            at = loose.find(fact, at + 1)
    return spans


def _signature_block(text: str, spans: list[tuple[int, int]], guarded: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The closing block of each message: of the text, and in a reply chain of every message above a
    quoted header ("From: ...", "-----Original Message-----", "On ... wrote:")."""
    found: list[tuple[int, int]] = []
    begin = 0
    for boundary in [*(m.start() for m in _MESSAGE_START.finditer(text) if m.start() > 0), len(text)]:
        found += _closing_block(text, begin, boundary, spans, guarded)
        begin = boundary
    return found


# Where a quoted or forwarded message begins inside a text.
_MESSAGE_START = re.compile(r"(?im)^[ \t>]*(?:from|sent|de|od)[ \t]*:|^[ \t>]*-{2,}[ \t]*(?:original|forwarded)|"
                            r"^[ \t>]*on\b[^\n]{4,120}\bwrote[ \t]*:|^[ \t]*_{5,}")


def _closing_block(text: str, begin: int, stop: int, spans: list[tuple[int, int]],
                   guarded: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The closing block of short lines where the writer has put their name, role or organisation: from
    its first line that holds a removal to the end of the message, everything is the signature (a
    colleague, the office's street, a switchboard, a team), unless a line holds a subject fact. A message's
    first line is never part of it: a one-line report is a report, not a signature."""
    lines = [(begin + m.start(), begin + m.end()) for m in re.finditer(r"[^\n]*", text[begin:stop])]
    lines = [(a, b) for a, b in lines if b > a or a < stop]
    block_start = None
    for start, end in reversed(lines[1:]):
        line = text[start:end]
        if not line.strip() or _DISCLAIMER.search(line):
            continue  # a disclaimer under the signature ("registered charity no ...") is part of it
        if (len(line) > 100 or _SENTENCE.search(line) or _CHAT_LINE.match(line)
                or any(s < end and start < e for s, e in guarded)):
            break  # a chat's last message is a message, however short, not a signature
        if _SHORT_SENTENCE.search(line) and not any(start <= s < end for s, _ in spans):
            break  # "Jayden has a new phone.": the report's last sentence, above any signature
        if any(start <= s < end for s, _ in spans):
            block_start = start
    if block_start is None:
        last = None
        for start, end in reversed(lines[1:]):
            if text[start:end].strip():
                last = (start, end)
                break
        if last and _NAME_LINE.fullmatch(text[last[0]:last[1]]) and not any(
                s < last[1] and last[0] < e for s, e in guarded):
            return [last]  # "Hamish", "Ellie G", "Mrs O-H", "Dr A.": a name alone closing the message
        return []
    return [(block_start, begin + len(text[begin:stop].rstrip()))]


# A line of a pasted chat: "28/06/2025, 02:50 - Gwen: ...", "[09:16] Gareth: ...".
_CHAT_LINE = re.compile(r"[ \t]*\[?\d{1,2}/\d{1,2}/\d{2,4},?[ \t]+\d{1,2}:\d{2}|"
                        r"[ \t]*\[(?:[A-Za-z]+[ \t]+)?\d{1,2}:\d{2}")
# A closing line that is only a name: one to three capitalised words or initials, or a title and initials.
_NAME_LINE = re.compile(
    r"[ \t>*\-~]*(?:(?:mr|mrs|ms|miss|mx|dr|rev|fr|sr|br)\.?[ \t]+[A-Za-z](?:[.\-]?[A-Za-z]){0,3}\.?|"
    r"(?-i:[A-Z\u00c0-\u017f])[^\W\d_]*(?:['\u2019\-][^\W\d_]+)*\.?"
    r"(?:[ \t]+(?-i:[A-Z\u00c0-\u017f])[^\W\d_]*(?:['\u2019\-][^\W\d_]+)*\.?){0,2})[ \t,.!x]*",
    re.IGNORECASE)


def _letterhead(text: str, spans: list[tuple[int, int]], guarded: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The opening block of a letter or note: when the text's first line names the writer, their team or
    organisation ("Dr A Shah - Tier 3 Outpatients, The Beeches, 9 Latchford Road"), that line and the
    short lines under it (the department, the office's address, its phone) are the letterhead, up to a blank
    line, a greeting, a sentence or a line with a subject fact. A text of one line is a report."""
    first_end = text.find("\n")
    if first_end == -1:
        return []
    first = text[:first_end]
    if (len(first) > 100 or _SENTENCE.search(first) or _SHORT_SENTENCE.search(first) or _TWO_SENTENCES.search(first)
            or _GREETING.match(first) or not any(s < first_end for s, _ in spans)
            or any(s < first_end for s, _ in guarded)):
        return []
    end = first_end
    for line in re.finditer(r"\n([^\n]*)", text[first_end:]):
        content = line.group(1)
        at = first_end + line.start()
        if (not content.strip() or len(content) > 100 or _SENTENCE.search(content) or _SHORT_SENTENCE.search(content)
                or _GREETING.match(content) or any(at <= s < at + len(content) + 1 for s, _ in guarded)):
            break
        end = first_end + line.end()
    return [(0, end)]


_GREETING = re.compile(r"[ \t>*]*(?:dear|to whom|hi|hello|hiya|hey|good (?:morning|afternoon|evening)|re\b|subject|"
                       r"fao|f\.a\.o|ref|annwyl|prynhawn|bore da|dzie[nń] dobry|ol[aá]|bun[aă]|salaam|assalam)",
                       re.IGNORECASE)
_TWO_SENTENCES = re.compile(r"[a-z0-9)][.!?]\s+[A-Z]")
_DISCLAIMER = re.compile(r"confidential|intended recipient|registered (?:charity|in england|in wales|office|company)|"
                         r"charity (?:no|number|reg)|company (?:no|number|reg)|disclaimer|privacy notice|"
                         r"before printing|think before you print|this e-?mail|virus", re.IGNORECASE)


# --- normalising -----------------------------------------------------------------------------


def normalise(text: str) -> str:
    """The form every text is compared in, and kept in: the contracts' normalisation (NFKC, invisible
    characters gone, spaces and dashes unified), then look-alike letters inside a Latin word read as
    the Latin letters they imitate ("Kh\\u0430n", with a Cyrillic a, is "Khan"). A word wholly in another
    script is left alone: Cyrillic or Greek text is not a disguise."""
    text = str(normalise_text(text))
    if text.isascii():
        return text
    table = _look_alikes()
    return _WORD.sub(lambda m: _fold_word(m.group(), table), text)


_WORD = re.compile(r"[^\W_]+")


def _fold_word(word: str, table: dict[int, str]) -> str:
    if word.isascii() or not any(char.isascii() for char in word):
        return word
    return word.translate(table)


@lru_cache(maxsize=1)
def _look_alikes() -> dict[int, str]:
    """Unicode's confusables (UTS #39 data, via confusable_homoglyphs): each non-ASCII character that
    looks like exactly an ASCII letter or digit, mapped to it."""
    table: dict[int, str] = {}
    for char, glyphs in confusables_data.items():
        if len(char) == 1 and not char.isascii() and char.isalpha():
            latin = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isalnum()]
            if latin:
                table[ord(char)] = latin[0]
    return table


# --- building patterns -----------------------------------------------------------------------


def _fold(text: str) -> str:
    """"Zoë" -> "Zoe": people drop accents when they type a name."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _phrase(text: str) -> str:
    """A phrase as a pattern: words escaped, spaces or hyphens between them, a full stop inside
    optional ("St. Mary's" = "St Mary's"), apostrophes optional and of either kind. No full stop
    is taken after the last word: it ends the sentence, which is not the source's."""
    words = [word.rstrip(".") for word in re.split(r"[\s\-\u2010\u2013]+", text.strip())]
    escaped = [
        # "O'Connor" = "OConnor" = "O Connor"
        "".join(r"['\u2019\s]?" if char in "'\u2019" else re.escape(char) for char in word)
        for word in words
        if word
    ]
    return r"\.?[\s\-]+".join(escaped)


def _alternation(patterns: Iterable[str]) -> str:
    # Longest first, so "class teacher" wins over "teacher" where both could match.
    unique = sorted(set(patterns), key=lambda pattern: (-len(pattern), pattern))
    return "(?:" + "|".join(unique) + ")" if unique else "(?!)"


def _bounded(pattern: str) -> str:
    return rf"(?<![\w]){pattern}(?![\w])"


def _exact(word: str) -> str:
    """Case-sensitive inside an otherwise case-insensitive pattern."""
    return f"(?-i:{word})"


def _acronym(letters: str) -> str:
    """'OPS', 'O.P.S.', 'O. P. S.', 'O P S' or 'OP S', exactly as cased ('UoK')."""
    return _exact(r"(?:\.\s?|\s)?".join(re.escape(letter) for letter in letters) + r"\.?")


def _token(word: str, config: ScrubConfig) -> str:
    """A lone name or word: ordinary English words only when capitalised ("Will", not "will")."""
    variants = {word, _fold(word)}
    if word.lower() in config.common_words:
        return _exact("|".join(re.escape(form) for v in variants for form in (v.capitalize(), v.upper())))
    return _alternation(_phrase(v) for v in variants)


def _names(words: Iterable[str]) -> str:
    return _alternation(_phrase(variant) for word in words for variant in (word, _fold(word)))


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[\s,;()]+", text) if word and word not in {"-", "\u2013", "/"}]



def _source_rules_cached(config: ScrubConfig) -> Callable[[Source], list[_Rule]]:
    """The rules for a source, built from each part's rules compiled once: professionals share more than
    once, and colleagues share an organisation, a role and a domain."""
    names = lru_cache(maxsize=4096)(lambda name: _name_rules(name, config))
    emails = lru_cache(maxsize=4096)(lambda email: _email_rules(email, config))
    organisations = lru_cache(maxsize=1024)(lambda organisation: _organisation_rules(organisation, config))
    roles = lru_cache(maxsize=1024)(lambda role: _role_rules(role, config))

    def rules(source: Source) -> list[_Rule]:
        return [*names(source.name), *emails(source.email), *_phone_rules(source.phone),
                *organisations(source.organisation), *roles(source.role)]

    return rules


def _compile(
    pattern: str,
    *,
    protectable: bool = False,
    first_person: bool = False,
    prefix: _Prefix | None = None,
    suffix: re.Pattern[str] | None = None,
    clues: Iterable[str] = (),
    facts_win: bool = False,
    own_words: frozenset[str] | None = None,
    names_people: bool = False,
) -> _Rule:
    return _Rule(re.compile(pattern, re.IGNORECASE), protectable, first_person, prefix, suffix, tuple(clues),
                 facts_win, own_words, names_people)


def _name_rules(name: str, config: ScrubConfig) -> list[_Rule]:
    if "," in name:  # "Khan, Sarah"
        last, _, first = name.partition(",")
        name = f"{first} {last}"
    titles = {title.lower() for title in config.titles}
    tokens = _words(name)
    while len(tokens) > 1 and tokens[0].lower().rstrip(".") in titles:
        tokens.pop(0)
    if not tokens:
        return []
    start = len(tokens) - 1  # the surname begins at its particles: "de Souza", "van der Berg"
    while start > 1 and tokens[start - 1].lower() in config.name_particles:
        start -= 1
    surname, last = " ".join(tokens[start:]), tokens[-1]
    surnames = {surname, last} | set(re.split(r"[\-\u2010]", last))
    surnames = {s for s in surnames if len(s) >= 2 and s.lower() not in config.name_particles}
    given = tokens[0] if len(tokens) > 1 else None
    middles = tokens[1:start] if given else []

    title = config._shared.title_prefix
    surname_pattern = _names(surnames)
    rules = []
    bare = set(surnames)
    short_forms: set[str] = set()
    if given and len(given.rstrip(".")) >= 2:
        givens = {given, *re.split(r"[\-\u2010]", given)}
        for formal, shorts in config.given_name_variants.items():
            if given.lower() in {formal, *shorts}:
                givens |= {formal.capitalize(), *(s.capitalize() for s in shorts)}
        givens = {g for g in givens if len(g) >= 2}
        short_forms = _given_short_forms(given, config) - {g.lower() for g in givens}
        bare |= givens | {m for m in middles if len(m.rstrip(".")) >= 2}
        given_pattern = _names(givens)
        initials = [token[0].upper() for token in tokens[: start] if token[0].isalpha()]
        first_letter = _exact(re.escape(initials[0]))
        initial = first_letter + r"(?:\.\s*|\s+)"
        middle = r"(?:(?:" + (_names(middles) if middles else "(?!)") + r")\s+|(?-i:[A-Z])(?:\.\s*|\s+))*"
        surname_initial = _exact(re.escape(last[0].upper())) + r"(?:\.|(?!\w))"
        # "Sarah Khan", "Mrs Sarah J. Khan", "S. Khan", "S Khan"; "Sarah K."; "Khan, S.", "Khan Sarah"
        full = f"(?:{given_pattern}\\s+|{initial}){middle}{surname_pattern}{_POSSESSIVE}"
        short = f"{given_pattern}\\s+{surname_initial}"
        reverse = f"{surname_pattern},?\\s+(?:{given_pattern}|{first_letter}(?:\\.|(?!\\w)))"
        rules.append(_compile(_bounded(_alternation([full, short, reverse])), prefix=title))
        letters = "".join(initials) + last[0].upper()
        short_letters = initials[0] + last[0].upper()
        # A double-barrelled surname gives a letter for each part: "KAB" for Kwame Asante-Boateng.
        barrels = "".join(part[0].upper() for part in re.split(r"[\-\u2010]", last) if part)
        letter_forms = {letters, short_letters, "".join(initials) + barrels, initials[0] + barrels}
        # "SK", "S.K.", "S K", "SJK", "S-K"; "SKh": initials are short, so a longer subject fact may keep them.
        rules.append(
            _compile(
                rf"(?<![\w.]){_alternation(_acronym(form) for form in sorted(letter_forms))}(?!\w)",
                protectable=True,
            )
        )
        # "Ms P", "Mrs O-H", "Mr K.": a title and the surname's initial; "E McA", "R. Ll": the given name's
        # initial and the surname's first letters, as staff sign handover notes.
        surname_letters = _exact(re.escape(barrels[0]) + (rf"(?:[.\-]?{re.escape(barrels[1])})?" if len(barrels) > 1
                                                          else "")) + r"(?:\.|(?!\w))"
        titles_pattern = _alternation(_phrase(t) for t in config.titles)
        signed = [rf"{titles_pattern}\.?[ \t]+{surname_letters}"]
        if len(last) >= 4:
            stems = _alternation(re.escape(last[:size]) for size in range(2, min(5, len(last))))
            signed.append(rf"{initial}{_exact(stems)}\.?(?![\w'\u2019])")
        rules.append(_compile(rf"(?<![\w.]){_alternation(signed)}", protectable=True))
        # Nicknames, diminutives and short forms ("Bob", "Peggy", "Bim"), written as names are:
        # capitalised or in capitals, so that "pat" the verb or "bill" the invoice stay.
    own = frozenset(_fold(word).lower() for word in bare | set(tokens))
    if given and len(given.rstrip(".")) >= 2 and short_forms:
        own |= short_forms
        forms = frozenset(f for form in short_forms for f in (form.capitalize(), form.upper()))
        rules.append(_WordSetRule(_CAPITALISED_WORD, protectable=True, prefix=title, own_words=own, words=forms))
    # "Khan", "Sarah", and with a title ("Mrs Khan", "Miss Sarah"), which no subject fact keeps.
    tokens_pattern = _alternation(_token(word, config) for word in bare)
    rules.append(_compile(_bounded(tokens_pattern + _POSSESSIVE), protectable=True, prefix=title, own_words=own))
    return rules


_VOWELS = frozenset("aeiouy")


@lru_cache(maxsize=1)
def _nicknamer() -> NickNamer:
    return NickNamer()


def _given_short_forms(given: str, config: ScrubConfig) -> set[str]:
    """What a given name is shortened to, lower case: the curated nicknames both ways (Robert <-> Bob,
    and Bob's other long forms' nicknames), prefixes of three letters or more ("Abi", "Chris"), and
    the syllables a long name is called by ("Bim", "Bimbo", "Bola" of Abimbola; "Seun" of Oluwaseun)."""
    names = _nicknamer()
    plain = _fold(given).lower()
    forms = names.nicknames_of(plain) | names.canonicals_of(plain)
    for canonical in names.canonicals_of(plain):
        forms |= names.nicknames_of(canonical)
    letters = re.sub(r"[^a-z]", "", plain)
    if len(letters) >= 4:
        # "Fi", "Jo"; "Bern" -> "Bernie", "Dec" -> "Deccy", "Mag" -> "Mags": a short stem and a pet ending.
        stems = {letters[:size] for size in range(2, 5) if size < len(letters)}
        forms |= {stem for stem in stems if len(stem) > 2 or stem[-1] in _VOWELS}
        forms |= {stem + ending for stem in stems if len(stem) > 2 for ending in config.short_name_suffixes}
        forms |= {stem + stem[-1] + ending for stem in stems if len(stem) > 2 and stem[-1] not in _VOWELS
                  for ending in ("y", "ie", "ers")}
    if len(letters) >= 5:
        forms |= {letters[:size] for size in range(3, len(letters))}
        for onset in range(1, len(letters) - 2):
            if letters[onset] not in _VOWELS and letters[onset - 1] in _VOWELS:
                forms |= {letters[onset:onset + size] for size in range(3, 7) if onset + size <= len(letters)}
    return {
        form for form in forms
        if len(form) >= 2 and _VOWELS & set(form) and form not in config.short_form_exclusions and form != plain
    }


# A word as a name is written, capitalised or in capitals, and its possessive: "Bob", "BOB", "Bob's".
_CAPITALISED_WORD = re.compile(r"(?<![\w'\u2019\-])[A-Z][A-Za-z\u00c0-\u024f]*(?=(?:['\u2019]s)?(?![\w'\u2019\-]))")


@dataclass(frozen=True)
class _WordSetRule(_Rule):
    """Words looked up in a set rather than matched by a pattern: a name's many short forms cost a set,
    not a regular expression to compile for every source."""

    words: frozenset[str] = frozenset()

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            if match.group() in self.words:
                end = match.end()
                if text.startswith(("'s", "\u2019s"), end):
                    end += 2
                yield match.start(), end


# Labels of a domain that say nothing about whose it is ("www", "co", "uk", "nhs").
_DOMAIN_GENERIC_LABELS = frozenset(
    "www mail email com org net uk co ac gov sch nhs police mod ltd plc me info edu int eu ie scot wales "
    "cymru london biz io example test invalid localhost".split()
)


@dataclass(frozen=True)
class _EmailRule(_Rule):
    """The source's address, its local part (alone or at any domain) and any address or page at its own
    domain, found by plain search: an e-mail is literal, and a pattern per source would cost more to
    compile than to run."""

    local: str = ""  # lower case; empty when it is a shared mailbox name ("info", "office")
    domain: str = ""  # lower case; empty when it is everyone's (gmail.com, nhs.net)
    # The local part written alone ("callum"), not as an address: a first name, so a subject's fact keeps it.
    bare: bool = False

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        lowered = text.lower()
        if self.local:
            for at in _literal(lowered, self.local):
                if at > 0 and lowered[at - 1] in _ADDRESS_CHARS:
                    continue
                end = at + len(self.local)
                if end < len(lowered) and lowered[end] == "@":
                    if self.bare:
                        continue
                    end = _ADDRESS_END.match(lowered, end + 1).end()  # type: ignore[union-attr]
                elif end < len(lowered) and (lowered[end].isalnum() or lowered[end] == "_"):
                    continue
                elif not self.bare:
                    continue
                yield at, end
        if self.domain and not self.bare:
            for at in _literal(lowered, self.domain):
                end = at + len(self.domain)
                if end < len(lowered) and (lowered[end].isalnum() or lowered[end] in "-_"):
                    continue
                if at > 0 and (lowered[at - 1].isalnum() or lowered[at - 1] in "-_"):
                    continue
                start = at
                if at > 0 and lowered[at - 1] == "@":
                    start = _ADDRESS_START.search(lowered, 0, at - 1).start()  # type: ignore[union-attr]
                elif (found := _WEB_PREFIX.search(lowered, max(0, at - 12), at)) is not None:
                    start = found.start()
                end = _PATH.match(lowered, end).end()  # type: ignore[union-attr]
                yield start, end


_ADDRESS_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._+-@")
_ADDRESS_END = re.compile(r"[\w\-]*(?:\.[\w\-]+)*")
_ADDRESS_START = re.compile(r"[\w.+\-]*\Z")
_WEB_PREFIX = re.compile(r"(?:https?://)?(?:www\.)\Z|https?://\Z")
_PATH = re.compile(r"(?:/\S*)?")


def _literal(lowered: str, word: str) -> Iterator[int]:
    at = lowered.find(word)
    while at != -1:
        yield at
        at = lowered.find(word, at + 1)


def _email_rules(email: str, config: ScrubConfig) -> list[_Rule]:
    local, _, domain = email.lower().rpartition("@")
    shared_local = local in config.generic_email_local_parts or len(local) < 3
    shared_domain = domain in config.generic_email_domains
    # The address itself is the local part at its domain: found by either half.
    rules: list[_Rule] = [_EmailRule(_CAPITALISED_WORD, local=local if not shared_local else "",
                                     domain=domain if not shared_domain else "")]
    if not shared_local:
        # Protectable: a local part that is a first name ("callum@...") stays inside a subject's "Callum Reid".
        rules.append(_EmailRule(_CAPITALISED_WORD, protectable=True, local=local, bare=True))
    if shared_local:
        rules.append(_compile(re.escape(email), clues=["@"]))
    tokens = {part for part in re.split(r"[._\-+\d]+", local)
              if len(part) >= 3 and part not in config.generic_email_local_parts}
    if not shared_domain:
        # ...and so does its distinctive label alone: "copperfieldrangers", "quayside-chaplaincy".
        tokens |= {label for label in domain.split(".") if len(label) >= 3 and label not in _DOMAIN_GENERIC_LABELS}
    if tokens:
        rules.append(_compile(_bounded(_alternation(_token(t, config) for t in tokens)) + config._shared.not_a_street,
                              protectable=True))
    if not shared_domain:
        # A label written as the words it runs together: "hfcmat" as "HFC MAT", "kelbyssp" as "Kelby SSP".
        spaced = [label for label in domain.split(".") if len(label) >= 5 and label not in _DOMAIN_GENERIC_LABELS
                  and label.isalpha()]
        if spaced:
            rules.append(_compile(_bounded(_alternation(
                "".join(rf"{re.escape(letter)}[ \t\-]?" for letter in label[:-1]) + re.escape(label[-1])
                for label in spaced)) + config._shared.not_a_street, protectable=True))
    return rules


# "ext 204", "x204", "extn. 12" after the number belong to it.
_EXTENSION = re.compile(r"[ \t]*,?[ \t]*(?:ext|extn|ex|x)\.?[ \t]*\d{1,6}\b", re.IGNORECASE)


def _phone_rules(phone: str | None) -> list[_Rule]:
    """The source's number however it is written: spaces, dashes, brackets, +44 or 0, an extension."""
    if not phone:
        return []
    digits = re.sub(r"\D", "", phone)
    if phone.lstrip().startswith("+") or digits.startswith("00"):
        digits = digits.removeprefix("00")
        if not digits.startswith("44"):
            return [_PhoneRule(_PHONE_RUN, suffix=_EXTENSION, number=digits, prefixes=("00",))]
        digits = digits[2:]
    return [_PhoneRule(_PHONE_RUN, suffix=_EXTENSION, number=digits.removeprefix("0"), prefixes=_UK_PREFIXES)]


# Where an organisation's name has parts: "The Probation Service - Eastfield South PDU",
# "Ward 7 (Children's Unit), Pellham General Hospital", "Kelby Council | Youth Service".
_ORGANISATION_PARTS = re.compile(r"\s+-\s+|[,;:()|/]")


def _organisation_rules(organisation: str, config: ScrubConfig) -> list[_Rule]:
    """The name and every form it is written in: each part, every run of words with a distinctive word
    in it ("Pellham General", "Eastfield South PDU"), each distinctive word alone, reordered ("Kelby
    University" for "University of Kelby"), with generic words abbreviated ("Kelby Uni"), and acronyms
    of the whole and of its runs, with and without generic words ("WBC", "CRYFC", "LCAMHS", "UoK")."""
    leading = {word.lower() for word in config.organisation_leading_words}
    phrases: set[str] = set()
    singles: set[str] = set()
    acronyms: set[str] = set()
    for part in [organisation, *_ORGANISATION_PARTS.split(organisation)]:
        tokens = _words(part.replace("&", " & "))
        while tokens and tokens[0].lower() in leading:
            tokens.pop(0)
        if not tokens:
            continue
        phrases.add(" ".join(tokens))
        acronyms |= _acronyms(tokens, config)
        for first in range(len(tokens)):
            for stop in range(first + 1, len(tokens) + 1):
                run = tokens[first:stop]
                stop_words = config.organisation_stop_words
                if run[0].lower() in stop_words or run[-1].lower() in stop_words:
                    continue
                if not any(_distinctive(token, config) for token in run):
                    continue
                if len(run) == 1:
                    singles.add(run[0].strip("'\u2019"))
                else:
                    phrases.add(" ".join(run))
                    acronyms |= _acronyms(run, config)
        lowered = [token.lower() for token in tokens]
        if "of" in lowered[1:-1]:  # "University of Kelby" -> "Kelby University"
            at = lowered.index("of")
            tail = tokens[at + 1:]
            if tail and tail[0].lower() in leading:
                tail = tail[1:]
            phrases.add(" ".join(tail + tokens[:at]))
    phrases |= {abbreviated for phrase in phrases for abbreviated in _abbreviations(phrase, config)}
    shared = config._shared
    the = r"(?:(?:" + "|".join(re.escape(w) for w in leading) + r")\s+)?" if leading else ""
    patterns = [_phrase(phrase) for phrase in phrases] + [_acronym(letters) for letters in acronyms]
    rules = [_compile(_bounded(the + _alternation(patterns) + _POSSESSIVE), prefix=shared.organisation_prefix,
                      suffix=shared.organisation_suffix)]
    if singles:
        # A distinctive word alone ("Oakfield"): a subject's "14 Oakfield Road" may keep it, and so does a
        # street or park named like the organisation ("a house on Calder Road"): that is where a subject was.
        rules.append(_compile(
            _bounded(the + _alternation(_token(word, config) for word in singles) + _POSSESSIVE)
            + shared.not_a_street, protectable=True, prefix=shared.organisation_prefix,
            suffix=shared.organisation_suffix))
    kinds = {token.lower() for token in _words(organisation)} & config.organisation_settings
    if kinds:
        # "the pharmacy", "this hotel", when the sharer is a pharmacy or a hotel: their own setting.
        settings = _alternation(_phrase(kind) for kind in kinds)
        rules.append(_compile(_bounded(rf"(?:the|this)\s+{settings}(?:e?s)?") + _NOT_A_PLACE_IN_IT))
    return rules


# "the school gates", "the hotel car park": a place at the setting where a subject was, kept.
_NOT_A_PLACE_IN_IT = (r"(?!\s+(?:gates?|field|playground|car\s*park|grounds|entrance|bus|uniform|steps|doors?|"
                      r"toilets?|canteen|corridor|fence|railings|bike\s*shed|yard|reception|lobby|bar)\b)")


def _distinctive(token: str, config: ScrubConfig) -> bool:
    """A word that says which organisation, not what kind: "Oakfield", not "Primary" or "7"."""
    word = token.lower().strip("'\u2019")
    word = word.removesuffix("'s").removesuffix("\u2019s")
    # "Street" of "Harbourline Street Outreach" says no more than "Outreach": alone it would take every
    # subject's "Ferry Street" with it.
    return (len(word) >= 2 and not word.isdigit() and word not in config.organisation_generic_words
            and word not in config.organisation_stop_words and word not in _STREET_KINDS)


# Only the words that are never a name themselves ("St" is also Saint, "Vale" and "Park" are names).
_STREET_KINDS = frozenset({"street", "road", "lane", "avenue"})


def _acronyms(tokens: list[str], config: ScrubConfig, *, hyphens: bool = True) -> set[str]:
    """Initials of a run of words, three letters or more: with and without its generic words, and with
    'of'/'and' as a small letter or a capital ("UoK", "UOK"). A word in capitals gives all its letters
    ("Lakeside CAMHS" -> "LCAMHS"; "Rangers Youth FC" -> "RYFC")."""
    def initials(word: str) -> str:
        return word if word.isupper() and word.isalpha() and len(word) <= 6 else word[0].upper()

    # "Al-Furqan Community Mosque" is "AFCM" as well as "ACM": each part of a hyphenated name gives its letter.
    split = [part for token in tokens for part in re.split(r"(?<=\w)-(?=[A-Z])", token) if part]
    if hyphens and split != tokens:
        return _acronyms(split, config, hyphens=False) | _acronyms(tokens, config, hyphens=False)
    words = [word for word in tokens if word[0].isalnum() or word == "&"]
    plain = [initials(w) for w in words if w.lower() not in config.organisation_stop_words and w != "&"]
    distinctive = [initials(t) for t in words if _distinctive(t, config) or t.isupper()]
    with_small = [t[0].lower() if t.lower() in config.organisation_stop_words else initials(t)
                  for t in words if t.lower() not in {"the", "a", "an"}]
    first_only = [t[0].upper() for t in words if t.lower() not in config.organisation_stop_words and t != "&"]
    forms = {"".join(plain), "".join(distinctive), "".join(with_small), "".join(with_small).upper(),
             "".join(first_only)}
    acronyms = {form for form in forms if len(form) >= 3 and form[0].isalnum()}
    if len(words) == 2 and all(_distinctive(w, config) for w in words):
        acronyms.add("".join(w[0].upper() for w in words))  # "Velvet Quarter" -> "VQ": two names, two capitals
    return acronyms


def _abbreviations(phrase: str, config: ScrubConfig) -> set[str]:
    """The phrase with each generic word in its usual short form: "Kelby University" -> "Kelby Uni"."""
    words = phrase.split()
    forms = set()
    for at, word in enumerate(words):
        for short in config.organisation_abbreviations.get(word.lower(), ()):
            forms.add(" ".join([*words[:at], short, *words[at + 1:]]))
    return forms


def _role_phrase(phrase: str) -> str:
    """Acronyms of one or two letters ("TA", "HV") only in capitals; longer ones in any case."""
    if phrase.isupper() and len(phrase) <= 2:
        return _exact(re.escape(phrase))
    return _phrase(phrase)


_UNITS = ("team", "office", "unit", "service", "desk", "department", "dept")


def _role_rules(role: str, config: ScrubConfig) -> list[_Rule]:
    """The role title, its core ("Senior Housing Officer" -> "Housing Officer"), what it is called without
    its head noun ("Family Support Worker" -> "Family Support"), its usual abbreviations ("Exec Head",
    "night mgr", "Cons. Psych"), its acronym ("EP", "FSW", exactly in capitals) and every title of the
    same family ("class teacher" -> "form tutor"), with "the", "her"..."""
    modifiers = {word.lower() for word in config.role_modifiers}
    parts = [part.strip() for part in re.split(r"[/,;&()]|\band\b", role) if part.strip()]
    phrases = set(parts)
    for part in parts:
        words = _words(part)
        while len(words) > 1 and (words[0].lower() in modifiers or words[0].isdigit()):
            words.pop(0)
        phrases.add(" ".join(words))
        if len(words) >= 3 and words[-1].lower() in config.role_heads:
            phrases.add(" ".join(words[:-1]))
            # "Mentoring Scheme Manager" signs as "Scheme Manager", "Breakfast Club Coordinator" as "Club Coordinator"
            phrases.add(" ".join(words[-2:]))
        if len(words) >= 3:
            # "District Nursing Sister" is one of the "DN" team
            letters = "".join(w[0].upper() for w in words[:-1] if w.lower() not in config.organisation_stop_words)
            if len(letters) >= 2 and letters not in _COMMON_ACRONYMS:
                phrases.add(letters)
        if len(words) >= 2:
            # A "Listing Officer" works in the listing office, a "Tenancy Enforcement Solicitor" in its team.
            phrases |= {f"{' '.join(words[:-1])} {unit}" for unit in _UNITS}
        stop = config.organisation_stop_words
        for named in (_words(part), words, words[-2:]):  # "Duty Social Worker" -> "DSW" and "SW"
            letters = "".join(w[0].upper() for w in named if w.lower() not in stop)
            if len(letters) >= 2 and len(named) >= 2:
                phrases.add(letters)
    phrases |= {short for phrase in list(phrases) for short in _role_abbreviations(phrase, config)}
    families = [family for family in config._shared.role_families if family.pattern.search(role)]
    pattern = _bounded(_alternation(_role_phrase(p) for p in phrases))
    rules = [_compile(pattern, prefix=config._shared.role_prefix), *families]
    lowered = role.lower()
    places = {place for word, settings in config.role_settings.items() if re.search(rf"\b{re.escape(word)}\b", lowered)
              for place in settings}
    if places:
        # "on the ward" from a nurse, "the surgery" from a GP, "the station" from a lifeboat volunteer.
        rules.append(_compile(_bounded(r"(?:the|this)\s+" + _alternation(_phrase(p) for p in places))
                              + _NOT_A_PLACE_IN_IT))
    return rules


def _role_abbreviations(phrase: str, config: ScrubConfig) -> set[str]:
    """Every combination of the usual short forms of a role's words, at most a few dozen."""
    choices = [[word, *config.role_abbreviations.get(word.lower(), ())] for word in phrase.split()]
    forms = {""}
    for options in choices:
        forms = {f"{form} {option}".strip() for form in forms for option in options}
        if len(forms) > 64:
            return set()
    return forms - {phrase}


def _last_words(phrases: Iterable[str]) -> frozenset[str]:
    return frozenset(phrase.split()[-1].lower().rstrip(".") for phrase in phrases if phrase.split())


def _shared(config: ScrubConfig) -> _Shared:
    """First-person and setting rules, the same for every source, and the shared prefixes."""
    determiners = _alternation(_phrase(d) for d in config.determiners)
    modifiers = _alternation([*(_phrase(m) for m in config.role_modifiers), r"\d+"])
    titles = _alternation(_phrase(t) for t in config.titles)
    role_prefix = _Prefix(re.compile(rf"(?<!\w)(?:{determiners}\s+)?(?:{modifiers}\s+)*\Z", re.IGNORECASE),
                          _last_words([*config.determiners, *config.role_modifiers]))
    kinds = sorted({*config.organisation_generic_words, *(short for shorts in config.organisation_abbreviations.values()
                                                           for short in shorts)} - config.organisation_stop_words)
    kind = _alternation(_phrase(word) for word in kinds if word.isalnum() or "'" in word)
    street = _alternation(_phrase(word) for word in config.street_words)
    heads = _alternation(_phrase(word) for word in config.role_heads)
    branch = _alternation(_phrase(word) for word in config.branch_words)
    return _Shared(
        title_prefix=_Prefix(re.compile(rf"(?<!\w){titles}(?:\.\s*|\s+)\Z", re.IGNORECASE),
                             _last_words(config.titles)),
        not_a_street=r"(?!\s+" + _alternation(_phrase(word) for word in config.street_words) + r"(?!\w))",
        street_after=re.compile(r"\s+" + _alternation(_phrase(word) for word in config.street_words) + r"(?!\w)",
                                re.IGNORECASE),
        # "Uni of" Kelby, "the Hospital of" St Cross
        organisation_prefix=_Prefix(
            re.compile(rf"(?<!\w)(?:the\s+)?(?:{kind}\s+){{1,3}}of\s+(?:the\s+)?\Z", re.IGNORECASE),
            frozenset({"of", "the"})),
        # Kelby "Uni", Lakeside "CAMHS team", Eastfield South PDU "(ES PDU)": kind words and team
        # acronyms after the name belong to it.
        organisation_suffix=re.compile(
            rf"(?:[ \t]+(?:{kind}|(?-i:[A-Z][A-Z&]{{1,5}}))(?![\w&]))*(?:[ \t]*\((?-i:[A-Z][A-Za-z .&]{{0,12}})\))?"
            # ...and its address written after it: "on Tannery Road", ", 3 Market Arcade", "at 22-30 Guildhall St"
            rf"(?:(?:[ \t]*,?[ \t]+(?:on|at|in|off)[ \t]+|[ \t]*,[ \t]*)(?:\d[\w\-]*[ \t]+)?"
            rf"(?-i:[A-Z])[\w'\u2019\-]*(?:[ \t]+(?-i:[A-Z])[\w'\u2019\-]*){{0,2}}[ \t]+{street}(?!\w))?"
            # ...or the branch of it: "Northgate branch", "Fenwick depot"
            rf"(?:[ \t]*,?[ \t]+(?-i:[A-Z])[\w'\u2019\-]*[ \t]+{branch}(?!\w))?",
            re.IGNORECASE),
        # "her", "the senior", "our year 5" before a role title
        role_prefix=role_prefix,
        role_families=[
            _compile(_bounded(_alternation(_role_phrase(p) for p in family)), prefix=role_prefix)
            for family in config.role_families
        ],
        appendix=re.compile(
            rf"[ \t]*[,|/@\-\u2013\u2014][ \t]*(?:the[ \t]+)?(?:[\w'\u2019\-]+[ \t]+){{0,2}}"
            rf"(?:team|unit|desk|services|office|department|dept|{heads})(?![\w'\u2019\-])|"
            r"[ \t]*\((?:the|our)[ \t]+[^()\n]{0,60}?\b(?:on|at|in|off|near|by)[ \t]+[^()\n]{1,40}\)|"
            # "[name] (Bellgrove Parade)", "[org] (Caterpillars)", "[name], Kilnsey St": a bracket without a number,
            # or a street, straight after the writer.
            r"[ \t]*\([^()\d\n]{1,40}\)|"
            # ...or its branch or unit, with its address: "[org] (Kirkbrook branch, Unit 4 Sandpiper Business Park)"
            rf"[ \t]*\((?:[\w'\u2019\-]+[ \t]+)?(?:{branch}|suite)(?![\w'\u2019\-])[^()\n]{{0,60}}\)|"
            # ...or its code: "[practice] (B86042)", "[trust] (RX1)"
            r"[ \t]*\((?-i:[A-Z][A-Z0-9]{1,3}\d{2,6})\)|"
            rf"[ \t]*,[ \t]*(?-i:[A-Z])[\w'\u2019]*(?:[ \t]+(?-i:[A-Z])[\w'\u2019]*){{0,2}}[ \t]+{street}(?!\w)",
            re.IGNORECASE),
        rules=_setting_rules(config),
        source_rules=_source_rules_cached(config),
        not_person_words=_not_person_words(config),
    )


def _not_person_words(config: ScrubConfig) -> frozenset[str]:
    """Capitalised words written beside a colleague's name that are not part of it ("Nurse", "Team")."""
    return frozenset(
        word for phrase in (*config.titles, *config.colleague_titles, *config.colleague_words,
                            *(p for family in config.role_families for p in family),
                            *config.organisation_generic_words, *config.workplaces, *config.role_heads,
                            *config.role_modifiers, *_CALENDAR_WORDS)
        for word in phrase.lower().split())


class _SignOffRule(_Rule):
    """A sign-off and the signature block under it: "Kind regards, Jo | FSW | ...", "Thanks,\nK",
    "Regards\nSarah Khan\nClass Teacher\n01632 ...". From the closing words to the end of the block:
    the lines after it while they are short and read like a signature, across one blank line when
    what follows is contact details."""

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            end = text.find("\n", match.end())
            end = len(text) if end == -1 else end
            taken = 0
            while end < len(text) and taken < 10:
                rest = text[end:]
                line = re.match(r"\n[ \t]*([^\n]*)", rest)
                if line is None:
                    break
                content = line.group(1)
                if not content.strip():
                    after = re.match(r"\n[ \t]*\n[ \t]*([^\n]*)", rest)
                    if after and _CONTACT_LINE.search(after.group(1)) and len(after.group(1)) <= 100:
                        end += after.end()
                        taken += 1
                        continue
                    break
                if len(content) > 100 or _SENTENCE.search(content):
                    break
                end += line.end()
                taken += 1
            yield match.start(), end


# A line of contact details: an address at a domain, a phone-like run, a web page, "Tel:", a bar.
_CONTACT_LINE = re.compile(r"@|\d[\d ()\-]{6,}\d|www\.|https?://|\||\b(?:tel|mob|mobile|email|e-mail|ext|"
                           r"fax|phone|direct|switchboard|web)\b", re.IGNORECASE)
# A short line that reads as a sentence: three words or more ending in a full stop, ! or ?.
_SHORT_SENTENCE = re.compile(r"(?:\S+\s+){2,}\S*[a-z0-9)'\u2019\"][.!?]\s*$")
# A line that is a sentence of the report, not part of a signature: several words ending in a full stop.
_SENTENCE = re.compile(r"(?:\S+\s+){6,}\S*[.!?]\s*$")


def _structure_rules(config: ScrubConfig) -> list[_Rule]:
    """The parts of a text that are about its writer by their place in it: letter and e-mail headers,
    forwarded-mail headers, cc / typed by / dictated by lines, and sign-off blocks."""
    labels = _alternation(_phrase(label) for label in config.header_labels)
    by_lines = _alternation(_phrase(label) for label in config.by_lines)
    sign_offs = _alternation(_phrase(words) for words in config.sign_offs)
    return [
        # "From: Jo Bloggs <jo@...>", "Cc: ...", "Author: ...", "Referrer name: ..." lines, whole.
        _compile(rf"(?m)^[ \t>*\-]*(?:{labels})[ \t]*:[^\n]*", clues=[":"]),
        # "-----Original Message-----", "Begin forwarded message:", "On 3 Mar 2025, Jo wrote:"
        _compile(r"(?m)^[ \t>]*-{2,}[ \t]*(?:original message|forwarded message)[ \t]*-{2,}[^\n]*|"
                 r"^[ \t>]*begin forwarded message:?[^\n]*|"
                 r"^[ \t>]*on\b[^\n]{4,120}\b(?:wrote|napisa[lł]\w*|a scris|escreveu|ysgrifennodd|schrieb)\s*:",
                 clues=["--", "forwarded", ":"]),
        # "dictated by Dr A Smith, typed by JB 12/03", "cc: Mark Evans (DSL)": to the end of the line.
        # A long line goes on with the report, so only the names just after the words go.
        _compile(rf"(?<!\w)(?:{by_lines})\b[ \t]*:?[ \t]*(?=(?-i:[A-Z])|\d)(?:[^\n]{{0,80}}(?=\n|\Z)|"
                 r"(?:(?-i:[A-Z])[\w.'\u2019\-]*[ \t]*){1,4})", clues=[" by"]),
        _compile(r"(?<![\w.])c\.?c\.?(?:'d|ed)?(?:\s+to)?[ \t]*:[^\n]*|"
                 r"(?m:^)[ \t]*(?-i:cc|CC|Cc)\s+(?=(?-i:[A-Z]))[^\n]*",
                 clues=["cc"]),
        # "... last week. Mr P", "... handed to the DSL. - Selva, [org]", "... 15. Ellie G": a name closing the
        # text after its last sentence (the subjects' names win).
        _compile(r"(?:(?<=[.!?][ \t])[ \t]*|(?<=[ \t])-+[ \t]*)-*[ \t]*(?:(?:mr|mrs|ms|miss|mx|dr|rev|fr)\.?[ \t]+"
                 r"[A-Za-z](?:[.\-]?[A-Za-z]){0,3}\.?|(?-i:[A-Z\u00c0-\u017f])[^\W\d_]*(?:['\u2019\-][^\W\d_]+)*\.?"
                 r"(?:[ \t]+(?-i:[A-Z\u00c0-\u017f])[^\W\d_]*(?:['\u2019\-][^\W\d_]+)*\.?){0,2})"
                 r"(?:[ \t]*,[ \t]*(?-i:[A-Z])[\w&'\u2019\-]*(?:[ \t]+(?-i:[A-Z])[\w&'\u2019\-]*){0,4})?[ \t.!x]*\Z",
                 facts_win=True),
        # "- Jo", "-- Sarah K", "~ K" closing the text.
        _compile(r"(?:^|\n)[ \t]*(?:-{1,2}|~)[ \t]*(?-i:[A-Z])[\w.'\u2019 ]{0,30}\s*\Z", clues=["-", "~"]),
        _SignOffRule(re.compile(
            rf"(?im)(?:^|(?<=[.!?])[ \t]+)[ \t]*(?:{sign_offs})(?=[ \t]*(?:[,.!\-|:]|\n|\Z|[ \t]+(?-i:[A-Z])))"),
            clues=tuple({words.split()[0].lower() for words in config.sign_offs})),
    ]


@dataclass(frozen=True)
class _ColleagueRule(_Rule):
    """Other professionals named with their role are the writer's colleagues, and name the writer's
    setting as surely as the writer's own name: "Coach Mick Gorman", "Dr Howells is aware", "Bartek Nowak
    (RSW)", "CSO, Jan Pawlak", "Dr Helen Mistry, YJS CAMHS", "Lisa Ambrose, my crewmate". Each capitalised
    name is found once; its role is looked for only beside it. A subject's name is never taken for one
    (the rule gives way to subject facts)."""

    titles: frozenset[str] = frozenset()
    role_after: re.Pattern[str] | None = None
    role_before: _Prefix | None = None
    # Before a first name alone: "my colleague Kelly", "crewmate Ioana", "EMT Ioana", "our HCA Jade" (not
    # "her manager Kwame": whose manager is not said, and many subjects have one).
    mate_before: _Prefix | None = None
    not_names: frozenset[str] = frozenset()
    acronyms: frozenset[str] = frozenset()  # staff roles in capitals: "EMT Ioana" is a role and a first name

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        assert self.role_after is not None and self.role_before is not None and self.mate_before is not None
        for match in self.pattern.finditer(text):
            first = match.group(1).lower()
            if match.group(1) in self.acronyms and match.group(2):
                name = match.group(2).split()[0]
                if name.lower() not in _NOT_NAMES and name.lower() not in self.not_names:
                    yield match.start(), match.start(2) + match.group(2).index(name) + len(name)
                continue
            titled = first.rstrip(".") in self.titles and match.group(2) is not None
            after = self.role_after.match(text, match.end())
            alone = match.group(2) is None and first not in _NOT_NAMES and first not in self.not_names
            if alone and not titled and not (after and after.group().lstrip().startswith("(")):
                if mate := self.mate_before.search(text, match.start(), 4):
                    yield mate.start(), match.end()
                continue  # one capitalised word alone is not a full name, unless a role in brackets follows it
            if not titled and match.group(2) is None and not after:
                continue

            before = self.role_before.search(text, match.start(), 4)
            if titled or after or before:
                start, end = (before.start() if before else match.start()), (after.end() if after else match.end())
                # "DSL (Mrs Keane)": the bracket opened before the name closes after it
                yield start, end + (text.startswith(")", end) and "(" in text[start:match.start()])


# Staff written in brackets after a first name on a rota or visit note: "Marek (vol)", "Nadia (student social
# worker)"; never "student" alone, which is what many subjects are.
_STAFF_IN_BRACKETS = (r"(?:vol|vols|volunteer|trainee|locum|sessional|relief|agency staff|bank staff|student social "
                      r"worker|student nurse|student midwife|student sw|on placement|placement student|front desk|"
                      r"reception|admin|on duty|duty)(?!\w)")


def _colleague_rules(config: ScrubConfig, roles: str) -> list[_Rule]:
    acronyms = _exact(_alternation(re.escape(a) for a in config.colleague_role_acronyms))
    role = rf"(?:{roles}|{acronyms})"
    mates = _alternation(_phrase(word) for word in config.colleague_words)
    close_words = ("colleague", "crewmate", "crew mate", "co-worker", "coworker", "workmate", "fellow volunteer")
    close = _alternation(_phrase(word) for word in close_words)
    word = r"[A-Z][a-z]{0,3}\.|[A-Z][\w'\u2019\-]*"  # a full stop only after a short title ("Dr.", "Br.")
    # The word before a name that can end a role or a colleague word, with the mark people put after it.
    last = _last_words([*(p for family in config.role_families for p in family), *config.colleague_role_acronyms,
                        *config.colleague_words])
    return [_ColleagueRule(
        # a title or a first name, then one or two more capitalised words
        re.compile(rf"(?<![\w'\u2019\-])({word})((?:[ \t]+[A-Z][\w'\u2019\-]+){{1,2}})?"),
        facts_win=True,
        titles=frozenset(title.lower() for title in config.colleague_titles),
        role_after=re.compile(rf"[ \t]*\([ \t]*(?:[\w\-]+[ \t]+){{0,2}}(?:{role}|{_STAFF_IN_BRACKETS})(?!\w)"
                              rf"[^)\n]{{0,30}}\)|"
                              rf"[ \t]*,[ \t]+(?:the[ \t]+)?(?:[\w\-]+[ \t]+){{0,2}}{role}(?!\w)|"
                              rf"[ \t]*,?[ \t]+(?:(?:my|our|a|the)[ \t]+)?{mates}(?!\w)", re.IGNORECASE),
        role_before=_Prefix(
            re.compile(rf"(?<!\w)(?:(?:my|our)[ \t]+)?(?:{role}|{mates})[ \t]*(?:[,:\-]?[ \t]+|\([ \t]*)\Z",
                       re.IGNORECASE),
            frozenset(f"{word}{mark}" for word in last for mark in ("", ",", ":", "-"))),
        mate_before=_Prefix(
            re.compile(rf"(?<!\w)(?:(?:my|our)[ \t]+(?:{role}|{mates})|{acronyms}|{close})[ \t]*[,:\-]?[ \t]+\Z",
                       re.IGNORECASE),
            frozenset(f"{word}{mark}" for word in last | _last_words(close_words) for mark in ("", ",", ":", "-"))),
        not_names=_not_person_words(config),
        acronyms=frozenset(config.colleague_role_acronyms),
        names_people=True,
    )]


@dataclass(frozen=True)
class _NamedPartRule(_Rule):
    """Only the named part of each match is removed (the speaker, not the chat's timestamp before it)."""

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            for name, value in match.groupdict().items():
                if value is not None:
                    yield match.span(name)


class _RotaRule(_Rule):
    """Names on a line that holds two or more of them after times: a rota or visit schedule, whose names
    are the writer's staff. One time and a name is as often a subject in a log ("10:15 Jaden M disclosed")."""

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for line in re.finditer(r"[^\n]+", text):
            found = [m.span(1) for m in self.pattern.finditer(text, line.start(), line.end())]
            if len(found) >= 2:
                yield from found


# A chat participant as a chat export shows them: one to three capitalised words or "Surname, Given".
_SPEAKER = (r"(?-i:[A-Z][\w'\u2019\-]*)(?:,?[ \t]+(?-i:[A-Z][\w'\u2019\-]*)){0,2}")
# Capitals that are what a report is about, not anybody's initials or acronym.
_COMMON_ACRONYMS = frozenset("CSE CCE ASB DA DV MH MSHT NRM FGM HBV CP CIN LAC CLA SEN SEND EHCP PP YP NFA HMO ID UK "
                             "EU AM PM ASAP NB FYI OK DOB CCTV SIM GP A&E PS".split())
# A member of staff's initials: "RT", "KAB", "PO'B", "McA", exactly in capitals.
# The usual case-work acronyms ("(CSE/CCE)", "(DA/MH)") are the report's subject matter, not anybody's initials.
_INITIALS = (rf"(?!(?-i:{'|'.join(map(re.escape, sorted(_COMMON_ACRONYMS)))})(?![\w'\u2019]))"
             r"(?-i:[A-Z]{1,2}['\u2019]?[A-Z]{1,2}|[A-Z]Mc[A-Z])")
# What a number that is the writer's workplace's is called, and a run of digits written as a phone number.
_OWN_LINES = "office|outreach|duty|group|team|work|main|direct|reception|switchboard|helpline|help line|project|" \
             "centre|club|shelter|hostel|school|surgery|ward|desk"
_PHONE_LIKE = r"\+?\(?\d[\d \t().\-]{7,}\d"


def _setting_rules(config: ScrubConfig) -> list[_Rule]:
    roles = _alternation(_role_phrase(p) for family in config.role_families for p in family)
    leads = _alternation(_phrase(lead) for lead in config.first_person_role_leads)
    things = _alternation(
        _phrase(p) for p in (*config.settings, *config.setting_parts, *config.relations)
    )
    modifiers = _alternation([*(_phrase(m) for m in config.role_modifiers), r"\d+"])
    mine = rf"(?:one\s+of\s+)?(?:my|our)(?:\s+own)?\s+(?:{modifiers}\s+)*"
    plural = r"(?:e?s)?"
    pronoun_forms = []
    for word in config.first_person:
        if word == "i":
            pronoun_forms += ["I", r"i(?=\s)"]  # lower-case "i" only as a word before a space
            continue
        forms = {word, word.capitalize(), word.upper()} - {"US", "ME"}  # the country, the illness
        pronoun_forms += sorted(form.replace("'", _APOSTROPHE) for form in forms)
    for word in config.first_person_other_languages:  # "piszę", "naszej", "rwy'n", "temos": never in capitals
        pronoun_forms += sorted({_phrase(word), _phrase(word.capitalize())})
    pronouns = rf"(?<![\w'\u2019\-]){_exact(_alternation(pronoun_forms))}(?![\w'\u2019\-])"
    determiners = _alternation(_phrase(d) for d in config.determiners)
    places = _alternation(_phrase(p) for p in (*config.settings, *config.workplaces))
    proper = r"(?-i:[A-Z])[\w'\u2019&\-]*"
    when = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day|january|february|march|april|may|june|july|august|" \
           r"september|october|november|december|christmas|easter"
    where = rf"(?:\s+(?:on|at|in|off)\s+(?:the\s+)?(?!(?:{when})\b){proper}(?:\s+{proper}){{0,3}})?"
    return [
        *_structure_rules(config),
        # "our Albion Road office", "my ward", "our new Hatfield site", "our office on Albion Road"
        _compile(_bounded(rf"{mine}(?:{proper}\s+){{0,3}}(?:{places}){plural}{where}"), first_person=True,
                 clues=["my", "our"]),
        # "here at the yard", "here on the ward", "here at Pellham General"
        _compile(_bounded(rf"here\s+(?:at|on|in)\s+(?:the\s+)?(?:(?:{proper}\s+){{0,3}}(?:{places}){plural}|"
                          rf"{proper}(?:\s+{proper}){{0,3}})"), first_person=True, clues=["here"]),
        # "Manny here", "Hi, Licensing here", "Joanne from Eastgate here"; "Hi, it's Jo", "this is Sam from
        # the Hub", "my name is Ana": the writer introducing themselves, unless it is a subject's name.
        _compile(r"(?:^|(?<=[.!?\n])[ \t]*)(?!(?:he|she|they|it|we|i|there|this|that|these|those|you|mum|dad|"
                 r"nobody|someone|everyone|people|lads|girls|boys|kids|men|women)\b)"
                 r"(?-i:[A-Z\u00c0-\u017f]|[\u4e00-\u9fff])[\w'\u2019\-]*(?:[ \t]+"
                 r"(?!(?:in|out|over|around|round|down|up|from|near|back|come|came|been|is|was|are|were|be|from)\b)"
                 r"[\w'\u2019\-]+){0,2}[ \t]+here\b(?:[ \t]+again\b)?(?=[ \t]*[,.!(\-:]|[ \t]+(?:from|with)\b)",
                 clues=[" here"], facts_win=True),
        _compile(rf"(?:^|(?<=[.!?,;:(\n])|\b(?:hi|hello|hiya|hey|morning|afternoon)\b[,!]?)[ \t]*"
                 rf"{proper}(?:[ \t]+{proper}){{0,2}}"
                 rf"(?:[ \t]+(?:from|at)[ \t]+(?:the[ \t]+)?{proper}(?:[ \t]+{proper}){{0,3}})?"
                 r"[ \t]+here\b", clues=[" here"], facts_win=True),
        _compile(rf"(?:(?:^|\b(?:hi|hello|hiya|hey|morning|afternoon)\b[,!]?[ \t]*)(?:it'?s|this is)|\bmy name is|"
                 rf"\bmy name's)[ \t]+{proper}(?:[ \t]+{proper}){{0,2}}"
                 rf"(?:[ \t]+(?:from|at|of)[ \t]+(?:the[ \t]+)?{proper}(?:[ \t]+{proper}){{0,3}})?",
                 clues=["it's", "its ", "it\u2019s", "this is", "my name"], facts_win=True),
        *_colleague_rules(config, roles),
        # The writer's own numbers: an extension ("x4462", "Ext 5217"), a staff number, the log's reference.
        _compile(r"(?<![\w])(?:ext|extn|x)\.?[ \t]*\d{3,6}(?!\w)|"
                 r"(?<!\w)(?:staff|employee|payroll|collar|warrant)[ \t]*(?:no|number|id|#)\.?[ \t]*:?[ \t]*"
                 r"[\w\-/]*\d[\w\-/]*|"
                 r"(?<!\w)(?:log|incident log|our|internal)[ \t]+ref(?:erence)?\.?[ \t]*(?:no\.?|number)?[ \t]*:?[ \t]*"
                 r"[\w\-/]*\d[\w\-/]*|"
                 # ...and the number of the writer's own record: "ref SCR/24/1177", "ePRF 250324-0091", "CLIENT 4471",
                 # "Callsign NC412". Not a police reference ("crime ref", "CAD 1234"), which is the police's own.
                 r"(?<!crime )(?<!police )(?<!cad )(?<!pnc )(?<!occurrence )(?<!nrm )(?<![\w/])"
                 r"(?:ref(?:erence)?|e?prf|call[ \t\-]?sign|smartcard|entry|concern[ \t]*#|"
                 r"(?:case|client|job|ticket)(?:[ \t]+(?:no|number|id|ref))?|"
                 r"(?:record|file|referral|attendance|episode|encounter|visit|log|booking|interpreter|incident|"
                 r"report|call)[ \t]+(?:no|number|id|ref))\.?[ \t]*(?:no\.?|number|#)?[ \t]*[:\-]?[ \t]*"
                 r"(?=[\w\-/]*\d)(?-i:[A-Z0-9])[\w\-/]{2,}(?:[ \t]\d{4}){0,3}|"
                 # A letter's reference of its writer's and typist's initials: "Our ref: BF/sh"
                 r"(?<![\w/])(?-i:[A-Z]{2,3}/[a-z]{2,3})(?![\w/])",
                 clues=["ext", " x", "staff", "employee", "payroll", "collar", "warrant", "ref", "prf", "sign", "case",
                        "client", "job", "ticket", "record", "file", " no", "number", " id", "#", "smartcard", "entry",
                        "/"]),
        # Action owners in minutes, by their initials: "Action KAB: ...", "Action: AbW to chase", "MLC to liaise".
        _compile(r"(?<!\w)actions?(?:[ \t]+for)?[ \t]*[:\-]?[ \t]*(?-i:[A-Z][A-Za-z]{1,3})(?=[ \t]*[:\-]|[ \t]+to\b)|"
                 r"(?<![\w'])(?-i:[A-Z][A-Za-z]?[A-Z]{1,2})(?=[ \t]+to[ \t]+(?:liaise|chase|contact|speak|share|refer|"
                 r"arrange|complete|follow|update|send|check|visit|offer|make|call|ring|e-?mail|discuss|review|"
                 r"feed back|circulate|invite|ask|request|book|write|meet|attend|raise|confirm|provide|seek)\b)",
                 clues=["action", " to "]),
        # The writer's other numbers, by what they are called: "our outreach line 07700 900563", "the office
        # number 0113 496 0218", "not the group phone 07700 900405", "0113-496-0218 (office)". A subject's
        # phone is "his", "her", "Tobi's own": never the office's, the team's or the line's.
        _compile(rf"(?<!\w)(?:(?:our|my)[ \t]+(?:[\w\-]+[ \t]+){{0,2}}|(?:the[ \t]+)?(?:{_OWN_LINES})[ \t]+)"
                 rf"(?:line|phone|number|mobile|mob|no\.?|tel(?:ephone)?)\b[ \t]*(?:is|on|:|-)?[ \t]*{_PHONE_LIKE}|"
                 rf"{_PHONE_LIKE}[ \t]*\([ \t]*(?:{_OWN_LINES})(?:[ \t]+(?:line|phone|number))?[ \t]*\)",
                 clues=[*_OWN_LINES.split("|"), "our", "my"]),
        # Who wrote each message of a chat pasted in: "21/06/2025, 23:51 - Marcus Reid:", "[09:15] Hollins, Bethany
        # (SM Control)", "Amber  1:14 AM": the people in the writer's own chat are the writer and colleagues.
        _NamedPartRule(re.compile(rf"(?m)(?:^[ \t]*\[?\d{{1,2}}/\d{{1,2}}/\d{{2,4}},?[ \t]+\d{{1,2}}:\d{{2}}"
                                  rf"(?::\d{{2}})?(?:[ \t]*[AaPp][Mm])?\]?"
                 rf"[ \t]*(?:-[ \t]*)?|^[ \t]*\[(?:[A-Za-z]+[ \t]+)?\d{{1,2}}:\d{{2}}(?:[ \t]*[AaPp][Mm])?\][ \t]*)"
                 rf"(?P<part>{_SPEAKER}(?:[ \t]*\([^)\n]{{1,40}}\))?)(?=[ \t]*(?::|$))|"
                 rf"^[ \t]*(?P<slack>{_SPEAKER})(?=[ \t]{{2,}}\d{{1,2}}:\d{{2}}[ \t]*[AaPp][Mm][ \t]*$)"),
                 clues=(":",), facts_win=True, names_people=True),
        # Staff on a rota line, by first name and initial: "AM 07:30 Ewa K | Lunch 12:15 Jade P".
        _RotaRule(re.compile(r"(?<![\d:])\d{1,2}[:.]\d{2}(?:[ \t]*[AaPp][Mm])?[ \t]+"
                             r"([A-Z][a-z'\u2019\-]+[ \t]+[A-Z])(?![\w.'\u2019])"),
                  clues=(":", "."), facts_win=True, names_people=True),
        # The system the writer's record came from ("SystmOne", "CPOMS incident export", "MyConcern"): it names
        # the writer's sector, often the organisation itself. Exactly as the systems spell themselves.
        _Rule(re.compile(rf"(?<![\w\-])(?:{_alternation(re.escape(name) for name in config.record_systems)})"
                         r"(?![\w\-])")),
        # A member of the writer's staff by number: "Driver 4471 reports", "Inspector 0932" (a subject's
        # badge or account number is written as what it is: "badge 2291", "account VE-7781").
        _compile(r"(?<![\w])(?-i:Driver|Inspector|Operative|Agent|Guard|Steward|Operator|Call handler)[ \t]+"
                 r"(?:no\.?[ \t]*|#[ \t]*)?\d{3,6}(?!\w)", protectable=True),
        # A ticket's fields that name who handled it: "Queue: Compliance & Safeguarding", "Assigned to: Josh P".
        # Not "Agent:" or "Operator:", which in a report are as often the letting agent or the taxi firm.
        _compile(r"(?<![\w])(?:queue|handler|assigned to|raised by|ticket owner)[ \t]*:[ \t]*"
                 r"[^|\n\t,;]{1,60}", clues=[":"], facts_win=True, names_people=True),
        # Staff by their initials on a shift log: "(BP/RT)", "Late (JA/PO'B)", "Night (RW)", "on-call (DW)",
        # "relieved by TB 07:00", "handed over to KM".
        _compile(rf"\((?:{_INITIALS})(?:[ \t]*/[ \t]*(?:{_INITIALS}))+\)|"
                 rf"(?<!\w)(?:early|lates?|nights?|days?|am|pm|waking night|sleep-?in|on-?call|on call|duty)[ \t]*"
                 rf"\((?:{_INITIALS})\)|"
                 rf"(?<!\w)(?:relieved by|covered by|handed over to|handover to|handed to|on shift with)[ \t]+"
                 rf"(?:{_INITIALS})(?![\w'\u2019])",
                 clues=["/", "(", "relieved", "covered", "hand", "on shift"]),
        # The organisation's registration: "Registered charity no. 1187654", "SC012345", "Company No 04417729".
        _compile(r"(?<!\w)(?:registered[ \t]+)?(?:scottish[ \t]+)?(?:charity|company|companies house|reg(?:istered)?|"
                 r"registration|vat)[ \t]*(?:no\.?|number|num|reg(?:istration)?\.?|registration)?[ \t]*[:.]?[ \t]*"
                 r"(?:in[ \t]+\w+(?:[ \t]+\w+)?[ \t]*(?:no\.?|number)?[ \t]*:?[ \t]*)?"
                 r"[A-Z]{0,3}[ \t]?\d[\d \t]{4,10}\d",
                 clues=["charity", "company", "reg", "vat"]),
        # "I am the licensee of", "I'm supervisor at the depot", "I am her adviser at": what the writer is.
        _compile(r"(?<![\w'\u2019])(?:i am|i'm|i\u2019m|i work as|i'm working as)[ \t]+"
                 r"(?:(?:the|a|an|his|her|their)[ \t]+)?(?:[\w\-]+[ \t]+){0,2}[\w\-]+(?=[ \t]+(?:at|of|for|in|with)\b)",
                 first_person=True, clues=["i am", "i'm", "i\u2019m", "i work"]),
        # "on behalf of the lifeguard team", "from the taxi licensing team", "(Bristol-side team)"
        _compile(_bounded(r"(?:on behalf of|from)[ \t]+(?:the[ \t]+)?(?:[\w\-]+[ \t]+){0,3}"
                          r"(?:team|office|desk|department|dept|hub|line|unit)|\((?:[\w\-]+[ \t]+){0,3}team\)"),
                 clues=["behalf", "from", "team"]),
        # "I am her teacher", "we're his GP practice", "I work as a youth worker"
        _compile(_bounded(rf"{leads}\s+(?:{determiners}\s+)?(?:{modifiers}\s+)*{roles}"), first_person=True,
                 clues=["i", "we"]),
        # "in my class" -> "in [marker]", "one of our pupils", "our DSL", "this school"
        _compile(_bounded(rf"{mine}(?:{things}|{roles}){plural}"), first_person=True, protectable=True,
                 clues=["my", "our"]),
        _compile(_bounded(r"this\s+" + _alternation(_phrase(s) for s in config.settings)), clues=["this"]),
        _compile(_bounded(_alternation(_phrase(s) for s in config.self_references))),
        _compile(_bounded(_alternation(_phrase(r) for r in config.roles_other_languages))),
        # The colleague a forwarded note is addressed to: "Hi Fiona,", "Dear Farrah,", "Fiona, can this go to
        # the police please" at a line's start (a subject's name wins).
        _compile(r"(?m)(?:^[ \t>]*(?:dear|hi|hello|hiya|hey|morning|afternoon|thanks|cheers)[ \t]+"
                 r"(?!(?:all|team|both|officer|sir|madam|there|everyone|colleagues|police)\b)"
                 r"(?-i:[A-Z])[\w'\u2019\-]+(?:[ \t]+(?-i:[A-Z])[\w'\u2019\-]+)?(?=[ \t]*[,!]|[ \t]*$)|"
                 r"^[ \t>]*(?-i:[A-Z])[\w'\u2019\-]+(?=[ \t]*[,\-\u2013][ \t]+(?:can|could|please|pls|see|just|fyi|as|"
                 r"would|pass|passing|forwarding|re|this|following|below)\b))",
                 facts_win=True, names_people=True),
        # The writer's premises by their street: "the Cobden Street depot", "our Kelby Rd branch".
        _compile(rf"(?<!\w)(?:the|our)[ \t]+{proper}(?:[ \t]+{proper}){{0,2}}[ \t]+"
                 rf"(?:depot|office|offices|branch|base|premises|yard|hq|headquarters)(?!\w)", facts_win=True,
                 clues=["depot", "office", "branch", "base", "premises", "yard", "hq", "headquarters"]),
        _compile(pronouns, first_person=True, protectable=True),
        # In capitals "ME" and "US" are the illness and the country, except as whom to ring: "RING ME", "CALL US".
        _compile(r"(?-i:\b(?:RING|CALL|TEXT|PHONE|EMAIL|E-MAIL|TELL|CONTACT|ASK|MESSAGE|WHATSAPP)[ \t]+(?:ME|US))\b",
                 first_person=True),
    ]

