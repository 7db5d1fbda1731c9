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
from pydantic import BaseModel, ConfigDict, field_validator

from schemas import Location, SanitisedIntel, Source, Subject, SubmissionContent, Vehicle

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

    @field_validator(
        "name_particles",
        "common_words",
        "organisation_generic_words",
        "organisation_stop_words",
        "generic_email_domains",
        "generic_email_local_parts",
    )
    @classmethod
    def _lower_case(cls, words: frozenset[str]) -> frozenset[str]:
        # These are looked up with word.lower(), so store them that way whatever the file says.
        return frozenset(word.lower() for word in words)

    @cached_property
    def _shared(self) -> _Shared:
        """What depends only on the phrase lists, compiled once per config."""
        return _shared(self)


def load_scrub_config(path: Path | None = None) -> ScrubConfig:
    """Read the phrase lists (default: scrub_phrases.yaml beside this module)."""
    with (path or DEFAULT_PHRASES).open(encoding="utf-8") as handle:
        return ScrubConfig.model_validate(yaml.safe_load(handle))


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
        return scrubbed if len(scrubbed) <= limit else scrubbed[: limit - 1] + "…"

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
class _Rule:
    pattern: re.Pattern[str]
    protectable: bool = False  # may survive inside a longer protected subject fact
    first_person: bool = False  # grammar of the writer: not applied inside quotation marks
    # Words just before a match that belong to it ("Mrs" Khan, "the senior" housing officer),
    # kept out of the per-source patterns so that those stay small and quick to compile.
    prefix: re.Pattern[str] | None = None

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
        for match in self.pattern.finditer(text):
            yield match.span()


# A run of digits and the separators people put in phone numbers.
_PHONE_RUN = re.compile(r"[\d(][\d\s().\-]*\d")
_UK_PREFIXES = ("00440", "0044", "440", "44", "0")  # before a UK national number


@dataclass(frozen=True)
class _PhoneRule(_Rule):
    """The source's number however it is written, compared on digits: no pattern per source."""

    number: str = ""  # the UK national number without its 0, or the whole international number
    prefixes: tuple[str, ...] = ()

    def spans(self, text: str) -> Iterator[tuple[int, int]]:
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
    title_prefix: re.Pattern[str]
    role_prefix: re.Pattern[str]
    role_families: list[_Rule]
    rules: list[_Rule]
    source_rules: Callable[[Source], list[_Rule]]


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
        facts = sorted({fact.strip() for fact in protected if len(fact.strip()) >= 2}, key=len)
        self._protected = (
            re.compile(_bounded(_alternation(_phrase(fact) for fact in facts) + _POSSESSIVE), re.IGNORECASE)
            if facts
            else None
        )

    def scrub(self, text: str, *, facts_only: bool = False) -> tuple[str, int]:
        """facts_only: the text is a subject fact (a name, an address), not the writer's prose,
        so only the source's identifiers are removed, not first-person words."""
        rules = self._identity if facts_only else self._all
        guarded = [m.span() for m in self._protected.finditer(text)] if self._protected else []
        quoted = [m.span() for m in _QUOTED.finditer(text)]
        spans = []
        for rule in rules:
            for start, end in rule.spans(text):
                if start == end:
                    continue
                if rule.prefix and (before := rule.prefix.search(text, max(0, start - 80), start)):
                    start = before.start()
                if rule.protectable and any(
                    s <= start and end <= e and e - s > end - start for s, e in guarded
                ):
                    continue
                if rule.first_person and any(s <= start and end <= e for s, e in quoted):
                    continue
                spans.append((start, end))
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
    """'OPS' or 'O.P.S.', exactly in capitals."""
    return _exact(f"{letters}|" + r"\.\s?".join(letters) + r"\.?")


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



def _source_rules(source: Source, config: ScrubConfig) -> list[_Rule]:
    return [
        *_name_rules(source.name, config),
        *_email_rules(source.email, config),
        *_phone_rules(source.phone),
        *_organisation_rules(source.organisation, config),
        *_role_rules(source.role, config),
    ]


def _compile(
    pattern: str,
    *,
    protectable: bool = False,
    first_person: bool = False,
    prefix: re.Pattern[str] | None = None,
) -> _Rule:
    return _Rule(re.compile(pattern, re.IGNORECASE), protectable, first_person, prefix)


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
    if given and len(given.rstrip(".")) >= 2:
        givens = {given, *re.split(r"[\-\u2010]", given)}
        for formal, shorts in config.given_name_variants.items():
            if given.lower() in {formal, *shorts}:
                givens |= {formal.capitalize(), *(s.capitalize() for s in shorts)}
        givens = {g for g in givens if len(g) >= 2}
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
        # "SK", "S.K.", "SJK": initials are short, so a longer subject fact may keep them.
        rules.append(
            _compile(
                rf"(?<![\w.]){_alternation([_acronym(letters), _acronym(short_letters)])}(?!\w)",
                protectable=True,
            )
        )
    # "Khan", "Sarah", and with a title ("Mrs Khan", "Miss Sarah"), which no subject fact keeps.
    tokens_pattern = _alternation(_token(word, config) for word in bare)
    rules.append(_compile(_bounded(tokens_pattern + _POSSESSIVE), protectable=True, prefix=title))
    return rules


def _email_rules(email: str, config: ScrubConfig) -> list[_Rule]:
    local, _, domain = email.lower().rpartition("@")
    patterns = [re.escape(email), re.escape(local) + r"@[\w\-]+(?:\.[\w\-]+)+"]
    if local not in config.generic_email_local_parts and len(local) >= 3:
        patterns.append(rf"(?<![\w.@+\-]){re.escape(local)}(?![\w@])")  # "sarah.khan" alone
    if domain not in config.generic_email_domains:
        # Any address or web page at the source's own domain names the organisation.
        patterns.append(rf"(?:[\w.+\-]+@|(?:https?://)?(?:www\.)?)(?<![\w\-]){re.escape(domain)}(?:/\S*)?(?![\w\-])")
    return [_compile(pattern) for pattern in patterns]


def _phone_rules(phone: str | None) -> list[_Rule]:
    """The source's number however it is written: spaces, dashes, brackets, +44 or 0."""
    if not phone:
        return []
    digits = re.sub(r"\D", "", phone)
    if phone.lstrip().startswith("+") or digits.startswith("00"):
        digits = digits.removeprefix("00")
        if not digits.startswith("44"):
            return [_PhoneRule(_PHONE_RUN, number=digits, prefixes=("00",))]
        digits = digits[2:]
    return [_PhoneRule(_PHONE_RUN, number=digits.removeprefix("0"), prefixes=_UK_PREFIXES)]


def _organisation_rules(organisation: str, config: ScrubConfig) -> list[_Rule]:
    """The name, its short forms ("Oakfield Primary School" -> "Oakfield Primary", "Oakfield")
    and its acronym ("OPS")."""
    inside = re.findall(r"\(([^)]*)\)", organisation)  # "(CAMHS)" is a name of its own
    tokens = _words(re.sub(r"\([^)]*\)", " ", organisation))
    leading = {word.lower() for word in config.organisation_leading_words}
    while len(tokens) > 1 and tokens[0].lower() in leading:
        tokens.pop(0)
    generic = config.organisation_generic_words
    forms, single = [" ".join(tokens)], []
    while len(tokens) > 1 and tokens[-1].lower().strip("'\u2019") in generic:
        tokens.pop()
        if any(token.lower() not in generic for token in tokens):
            forms.append(" ".join(tokens))
    if len(forms) > 1 and " " not in forms[-1]:
        single.append(forms.pop())  # "Oakfield" alone: a subject's "Oakfield Road" may keep it
    letters = "".join(
        word[0].upper()
        for word in _words(re.sub(r"\([^)]*\)", " ", organisation))
        if word.lower() not in config.organisation_stop_words and word[0].isalnum()
    )
    the = r"(?:(?:" + "|".join(re.escape(w) for w in leading) + r")\s+)?" if leading else ""
    patterns = [_phrase(form) for form in forms + [i for i in inside if i.strip()]]
    if len(letters) >= 3:
        patterns.append(_acronym(letters))
    rules = [_compile(_bounded(the + _alternation(patterns) + _POSSESSIVE))]
    if single:
        rules.append(_compile(_bounded(the + _token(single[0], config) + _POSSESSIVE), protectable=True))
    return rules


def _role_phrase(phrase: str) -> str:
    """Acronyms of one or two letters ("TA", "HV") only in capitals; longer ones in any case."""
    if phrase.isupper() and len(phrase) <= 2:
        return _exact(re.escape(phrase))
    return _phrase(phrase)


def _role_rules(role: str, config: ScrubConfig) -> list[_Rule]:
    """The role title, its core ("Senior Housing Officer" -> "Housing Officer"), its acronym and
    every title of the same family ("class teacher" -> "form tutor"), with "the", "her"..."""
    modifiers = {word.lower() for word in config.role_modifiers}
    parts = [part.strip() for part in re.split(r"[/,;&()]|\band\b", role) if part.strip()]
    phrases = set(parts)
    for part in parts:
        words = _words(part)
        while len(words) > 1 and (words[0].lower() in modifiers or words[0].isdigit()):
            words.pop(0)
        phrases.add(" ".join(words))
        stop = config.organisation_stop_words
        letters = "".join(w[0].upper() for w in _words(part) if w.lower() not in stop)
        if len(letters) >= 3 and len(_words(part)) >= 3:
            phrases.add(letters)
    families = [family for family in config._shared.role_families if family.pattern.search(role)]
    pattern = _bounded(_alternation(_role_phrase(p) for p in phrases))
    return [_compile(pattern, prefix=config._shared.role_prefix), *families]


def _shared(config: ScrubConfig) -> _Shared:
    """First-person and setting rules, the same for every source, and the shared prefixes."""
    determiners = _alternation(_phrase(d) for d in config.determiners)
    modifiers = _alternation([*(_phrase(m) for m in config.role_modifiers), r"\d+"])
    titles = _alternation(_phrase(t) for t in config.titles)
    role_prefix = re.compile(rf"(?<!\w)(?:{determiners}\s+)?(?:{modifiers}\s+)*\Z", re.IGNORECASE)
    return _Shared(
        title_prefix=re.compile(rf"(?<!\w){titles}(?:\.\s*|\s+)\Z", re.IGNORECASE),
        # "her", "the senior", "our year 5" before a role title
        role_prefix=role_prefix,
        role_families=[
            _compile(_bounded(_alternation(_role_phrase(p) for p in family)), prefix=role_prefix)
            for family in config.role_families
        ],
        rules=_setting_rules(config),
        # Professionals share more than once: keep the rules of recent sources compiled.
        source_rules=lru_cache(maxsize=1024)(lambda source: _source_rules(source, config)),
    )


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
    pronouns = rf"(?<![\w'\u2019\-]){_exact(_alternation(pronoun_forms))}(?![\w'\u2019\-])"
    determiners = _alternation(_phrase(d) for d in config.determiners)
    return [
        # "I am her teacher", "we're his GP practice", "I work as a youth worker"
        _compile(_bounded(rf"{leads}\s+(?:{determiners}\s+)?(?:{modifiers}\s+)*{roles}"), first_person=True),
        # "in my class" -> "in [marker]", "one of our pupils", "our DSL", "this school"
        _compile(_bounded(rf"{mine}(?:{things}|{roles}){plural}"), first_person=True, protectable=True),
        _compile(_bounded(r"this\s+" + _alternation(_phrase(s) for s in config.settings))),
        _compile(_bounded(_alternation(_phrase(s) for s in config.self_references))),
        _compile(pronouns, first_person=True, protectable=True),
    ]

