"""The router's pure domain: routing rules as data, and `assess`, which turns intel into a Decision.

Pure: stdlib, pydantic, yaml and `schemas` only. The one piece of I/O is `load_rules`, which
reads and validates the rules file once at start-up (and `load_model`, in model.py, the second opinion's).
"""

from __future__ import annotations

import re
import re._constants as re_constants
import re._parser as re_parser
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from schemas import (
    Category,
    Decision,
    Grading,
    HowKnown,
    LawfulBasis,
    Outcome,
    Priority,
    Review,
    ReviewReason,
    RuleFiring,
    Thrive,
)
from schemas.intel import SanitisedIntel
from schemas.submission import SubjectRole
from services.common.datafile import load_yaml_model
from services.router.assertion import Status, Triggers, counts, prepare, status_of
from services.router.model import TextModel
from services.router.phrases import Substrings

DEFAULT_RULES_PATH = Path(__file__).with_name("rules.yaml")

# Fixed namespace so that the same intel under the same rules always gets the same decision id,
# which keeps re-deliveries idempotent downstream.
DECISION_NAMESPACE = uuid.UUID("6f1d0c52-3b7e-4f0a-9a55-2c51f4a8e0b7")

_PRIORITY_RANK = {Priority.NONE: 0, Priority.LOW: 1, Priority.MEDIUM: 2, Priority.HIGH: 3}
_OUTCOME_ORDER = (Outcome.INTELLIGENCE_LOG, Outcome.CRIME_DESK, Outcome.SAFEGUARDING)
_MAX_EVIDENCE = 50
_MAX_EVIDENCE_CHARS = 200


# ------------------------------------------------------------------------------------------ model


def _valid_term(term: str) -> str:
    try:
        re.compile(_term_regex(term))
    except re.error as error:
        raise PydanticCustomError("bad_term", "Term '{term}' is not a valid pattern: {error}.",
                                  {"term": term, "error": str(error)}) from None
    return term


LexiconTerm = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_valid_term)]
LexiconName = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]
RuleText = Annotated[str, Field(min_length=1, max_length=1000)]


class _RulesModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubjectCondition(_RulesModel):
    """Holds for a subject with one of `roles` (any role if empty) and the given age and identity."""

    roles: list[SubjectRole] = []
    under_18: bool | None = None
    min_age: Annotated[int, Field(ge=0, le=120)] | None = None
    max_age: Annotated[int, Field(ge=0, le=120)] | None = None
    identifiable: bool | None = None


class TextCount(_RulesModel):
    """Holds when at least `at_least` different phrases from `lexicons` are found (an indicator checklist).

    A phrase found inside a longer one that was also found is the same sign and is not counted again.
    """

    lexicons: Annotated[list[str], Field(min_length=1)]
    at_least: Annotated[int, Field(ge=1, le=20)] = 2


class Condition(_RulesModel):
    """Every field given must hold (and); inside a list, any one item is enough (or).

    `any_of` holds when one nested condition holds; `all_of` when every nested condition holds, which
    lets a rule combine several alternatives ("a child" and "an adult directing them" and "an offence").
    `none_of` holds when no nested condition holds ("unless the report says the concern was checked and
    ruled out").
    """

    categories_any: list[Category] = []
    how_known_in: list[HowKnown] = []
    lawful_basis_in: list[LawfulBasis] = []
    subject_aware: bool | None = None
    subject: SubjectCondition | None = None
    no_subject: SubjectCondition | None = None
    has_location: bool | None = None
    has_vehicle: bool | None = None
    text_any: list[str] = []
    text_all: list[str] = []
    text_count: TextCount | None = None
    any_of: list[Condition] = []
    all_of: list[Condition] = []
    none_of: list[Condition] = []


class Rule(_RulesModel):
    """One routing rule: when its condition holds it adds outcomes and/or a priority, and says why."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9_.-]{1,100}$")]
    reason: RuleText
    concern: Annotated[str, Field(min_length=1, max_length=200)]
    when: Condition
    outcomes: list[Literal[Outcome.INTELLIGENCE_LOG, Outcome.CRIME_DESK, Outcome.SAFEGUARDING]] = []
    priority: Literal[Priority.HIGH, Priority.MEDIUM, Priority.LOW] | None = None
    no_action: bool = False

    @model_validator(mode="after")
    def _does_something(self) -> Rule:
        if self.no_action and (self.outcomes or self.priority):
            raise PydanticCustomError("no_action_alone", "A no_action rule cannot also give outcomes or a priority.")
        if not (self.no_action or self.outcomes or self.priority):
            raise PydanticCustomError("rule_does_nothing", "A rule must give outcomes, a priority or no_action.")
        return self


class HandlingRules(_RulesModel):
    """When the handling code is C (conditions) rather than P (lawful sharing permitted)."""

    conditional_lawful_bases: list[LawfulBasis]
    conditional_text: list[str]
    reason: RuleText


class GradingRules(_RulesModel):
    intelligence_assessment: dict[HowKnown, Literal["A", "B", "C", "D", "E"]]
    handling: HandlingRules

    @model_validator(mode="after")
    def _every_how_known(self) -> GradingRules:
        missing = sorted(set(HowKnown) - set(self.intelligence_assessment))
        if missing:
            raise PydanticCustomError("missing_assessment", "No intelligence assessment for: {missing}.",
                                      {"missing": ", ".join(missing)})
        return self


class RoutingRules(_RulesModel):
    """The whole rules file: version, lexicons, assertion triggers, grading and the rules themselves."""

    version: Annotated[str, Field(min_length=1, max_length=64)]
    no_action_reason: RuleText
    assertion: Triggers
    grading: GradingRules
    lexicons: dict[LexiconName, Annotated[list[LexiconTerm], Field(min_length=1)]]
    rules: Annotated[list[Rule], Field(min_length=1)]

    @model_validator(mode="after")
    def _references_resolve(self) -> RoutingRules:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.id in seen:
                raise PydanticCustomError("duplicate_rule", "Rule id '{rule}' is used twice.",
                                          {"rule": rule.id, "path": f"rules.{index}.id"})
            seen.add(rule.id)
            for path, name in _lexicon_references(rule.when, f"rules.{index}.when"):
                if name not in self.lexicons:
                    raise PydanticCustomError("unknown_lexicon", "Rule '{rule}' uses unknown lexicon '{name}'.",
                                              {"rule": rule.id, "name": name, "path": path})
        for field in ("exempt_lexicons", "historical_offences"):
            for position, name in enumerate(getattr(self.assertion, field)):
                if name not in self.lexicons:
                    raise PydanticCustomError("unknown_lexicon", "assertion.{field} names unknown lexicon '{name}'.",
                                              {"field": field, "name": name, "path": f"assertion.{field}.{position}"})
        for position, name in enumerate(self.grading.handling.conditional_text):
            if name not in self.lexicons:
                raise PydanticCustomError(
                    "unknown_lexicon", "grading.handling uses unknown lexicon '{name}'.",
                    {"name": name, "path": f"grading.handling.conditional_text.{position}"})
        return self


def _lexicon_references(condition: Condition, path: str) -> Iterator[tuple[str, str]]:
    for field in ("text_any", "text_all"):
        for position, name in enumerate(getattr(condition, field)):
            yield f"{path}.{field}.{position}", name
    if condition.text_count is not None:
        for position, name in enumerate(condition.text_count.lexicons):
            yield f"{path}.text_count.lexicons.{position}", name
    for field in ("any_of", "all_of", "none_of"):
        for position, nested in enumerate(getattr(condition, field)):
            yield from _lexicon_references(nested, f"{path}.{field}.{position}")


# ------------------------------------------------------------------------------------- loading


def load_rules(path: Path | None = None) -> RoutingRules:
    """Read and validate the rules file; a bad file raises ConfigurationError naming file and line."""
    rules = load_yaml_model(path or DEFAULT_RULES_PATH, RoutingRules, "the routing rules")
    _index(rules)  # compile every term and cue now, at start-up, rather than on the first report
    prepare(rules.assertion)
    return rules


# ------------------------------------------------------------------------------- text matching


@lru_cache(maxsize=4096)
def _word_regex(word: str) -> str:
    """A word and its common inflections: stab/stabs/stabbed/stabbing, supply/supplied, use/using."""
    if word.endswith("*"):
        return re.escape(word[:-1]) + r"[\w'\u2019]*"
    if len(word) < 3 or not word[-1].isalpha():
        return re.escape(word)
    if word.endswith("y") and word[-2] not in "aeiou":
        return re.escape(word[:-1]) + "(?:y|ies|ied|ying|ier|iers)"
    if word.endswith("e"):
        return re.escape(word[:-1]) + "(?:e|es|ed|ing|er|ers)"
    return re.escape(word) + f"(?:{re.escape(word[-1])}?(?:ed|ing|er|ers)|s|es)?"


def _term_regex(term: str) -> str:
    """A lexicon term as a regex: `re:` is taken as written; `...` allows up to three words between."""
    if term.startswith("re:"):
        return term[3:]
    pieces: list[str] = []
    gap = False
    for word in term.lower().split():
        if word == "...":
            gap = True
            continue
        if pieces:
            pieces.append(r"[\s\-]+(?:[\w'\u2019£,]+[\s\-]+){0,3}?" if gap else r"[\s\-]+")
        pieces.append(_word_regex(word))
        gap = False
    return "".join(pieces)


_WORD_CHAR = re.compile(r"[\w']")
# (A subject's age, from its fields or its description, is Subject.age_on in schemas: one reading for every service.)
@dataclass(frozen=True)
class _Term:
    """A compiled lexicon term. A match may not start inside a word: `guarded` terms are checked for that after
    the regex finds them (a leading lookbehind would stop the regex engine scanning fast for the term's first
    letters). A regex term that starts with \b or a lookbehind says where it may start itself (so
    "\b(?:will|'ll) kill" matches in "he'll kill")."""

    pattern: re.Pattern[str]
    guarded: bool

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        position = 0
        while (match := self.pattern.search(text, position)) is not None:
            start = match.start()
            if self.guarded and start > 0 and _WORD_CHAR.match(text, start - 1):
                position = start + 1
                continue
            yield match
            position = max(match.end(), start + 1)


@lru_cache(maxsize=4096)
def _compiled_term(term: str) -> _Term:
    own_start = term.startswith("re:") and re.match(r"\\b|\(\?<[!=]", term[3:]) is not None
    return _Term(re.compile("(?:" + _term_regex(term) + r")(?:'s)?(?![\w])", re.IGNORECASE), guarded=not own_start)


_MIN_CLUE = 3


@lru_cache(maxsize=4096)
def _clues(term: str) -> tuple[str, ...]:
    """Lower-case strings of which at least one must be in a text for `term` to match it (empty: no clue).

    Running 1,200 regexes over every report is slow; most terms have a word that must appear, and a substring
    test rules them out cheaply before the regex runs."""
    try:
        parsed = re_parser.parse(_term_regex(term), re.IGNORECASE)
    except re.error:
        return ()
    return _best_clue(list(parsed)) or ()


def _best_clue(items: list[tuple[object, object]]) -> tuple[str, ...] | None:
    """The most selective set of alternative literals that one of must appear for `items` (a parsed sequence)."""
    candidates: list[tuple[str, ...]] = []
    run = ""
    for op, arg in items:
        if op is re_constants.LITERAL:
            run += chr(arg).lower()  # type: ignore[arg-type]
            continue
        if run:
            candidates.append((run,))
            run = ""
        nested: tuple[str, ...] | None = None
        if op is re_constants.SUBPATTERN:
            nested = _best_clue(list(arg[-1]))  # type: ignore[index]
        elif op in (re_constants.MAX_REPEAT, re_constants.MIN_REPEAT) and arg[0] >= 1:  # type: ignore[index]
            nested = _best_clue(list(arg[2]))  # type: ignore[index]
        elif op is re_constants.BRANCH:
            branches = [_best_clue(list(branch)) for branch in arg[1]]  # type: ignore[index]
            if all(branches):
                nested = tuple(clue for branch in branches for clue in branch or ())
        if nested:
            candidates.append(nested)
    if run:
        candidates.append((run,))
    usable = [clue for clue in candidates if min(map(len, clue)) >= _MIN_CLUE]
    # Prefer clues that are not everyday words (almost every report holds "her" or "the"), then longer ones.
    return max(usable, key=lambda clue: (_COMMON_WORDS.isdisjoint(clue), min(map(len, clue)), -len(clue)),
               default=None)


_COMMON_WORDS = frozenset(
    "the and her his him she they them their was were has have had for with from that this not are you who out "
    "off into over been being will would man men one two get got can all any our its".split()
)


def _searchable_text(intel: SanitisedIntel) -> str:
    """The information plus every free-text description, each its own sentence."""
    parts = [intel.information]
    for subject in intel.subjects:
        parts.extend(filter(None, (subject.description, subject.address)))
    parts.extend(location.description for location in intel.locations)
    parts.extend(filter(None, (vehicle.description for vehicle in intel.vehicles)))
    return ".\n".join(parts)


class _LexiconIndex:
    """Each lexicon's terms compiled once per rules object, with the clues that rule a term out cheaply, and each
    rule's outcomes as the set `assertion.counts` is asked about."""

    def __init__(self, rules: RoutingRules) -> None:
        self.terms = {name: [_compiled_term(term) for term in terms] for name, terms in rules.lexicons.items()}
        # Per lexicon the terms that have no clue (always tried); per clue, the (lexicon, term) pairs it lets
        # through.
        self.unclued: dict[str, list[int]] = {name: [] for name in rules.lexicons}
        self.by_clue: dict[str, list[tuple[str, int]]] = {}
        for name, terms in rules.lexicons.items():
            for position, term in enumerate(terms):
                clues = _clues(term)
                if not clues:
                    self.unclued[name].append(position)
                for clue in clues:
                    self.by_clue.setdefault(clue, []).append((name, position))
        # Every clue looked for in one scan of the text.
        self.clues = Substrings(self.by_clue)
        self.rule_outcomes = [frozenset(outcome.value for outcome in rule.outcomes) for rule in rules.rules]

    def candidates(self, lower_text: str) -> dict[str, list[_Term]]:
        """Per lexicon, the terms worth running on `lower_text` (whose clues it holds), in the lexicon's order;
        a lexicon left out has none."""
        positions: dict[str, set[int]] = {name: set(unclued) for name, unclued in self.unclued.items() if unclued}
        for clue in self.clues.found_in(lower_text):
            for name, position in self.by_clue[clue]:
                positions.setdefault(name, set()).add(position)
        return {name: [self.terms[name][position] for position in sorted(found)] for name, found in positions.items()}


_INDEXES: dict[int, tuple[RoutingRules, _LexiconIndex]] = {}


def _index(rules: RoutingRules) -> _LexiconIndex:
    # Keyed by identity (a rules object is immutable and hashing the whole model on every call is slow); the
    # rules object is kept with its index so its id cannot be reused while the entry exists.
    cached = _INDEXES.get(id(rules))
    if cached is None or cached[0] is not rules:
        if len(_INDEXES) > 16:
            _INDEXES.clear()
        cached = _INDEXES[id(rules)] = (rules, _LexiconIndex(rules))
    return cached[1]


class _Facts:
    """What the rules look at, worked out once per intel; lexicon matches are cached as they are asked for."""

    def __init__(self, intel: SanitisedIntel, rules: RoutingRules, today: date) -> None:
        self.intel = intel
        self.rules = rules
        # Each subject's age, worked out once: rules ask about ages many times per intel.
        self.ages = [subject.age_on(today) for subject in intel.subjects]
        self.text = _searchable_text(intel)
        self.index = _index(rules)
        self.candidates = self.index.candidates(self.text.lower())
        # Per lexicon: each phrase found, with the statuses of its occurrences (worked out on first ask).
        self._findings: dict[str, dict[str, set[Status]]] = {}
        # What counted: per lexicon whose phrases are all present, for every rule; per lexicon and the outcomes
        # of the rule that asked, for the others (rules ask many times per intel).
        self._present: dict[str, list[str]] = {}
        self._counted: dict[tuple[str, frozenset[str]], list[str]] = {}
        # Every word a rule counted, lower-cased: evidence that is one of these came from the text, not from
        # the form's fields.
        self.text_words: set[str] = set()

    def matches(self, lexicon: str, outcomes: frozenset[str] = frozenset()) -> list[str]:
        """The phrases of `lexicon` in the text that count for a rule giving `outcomes` (assertion.counts):
        present ones always, hypothetical or historical ones only where the policy lets them count."""
        found = self._present.get(lexicon)
        if found is not None:
            return found
        key = (lexicon, outcomes)
        found = self._counted.get(key)
        if found is not None:
            return found
        findings = self._findings.get(lexicon)
        if findings is None:
            findings = self._findings[lexicon] = self._find(lexicon)
            if all(statuses == _PRESENT_ONLY for statuses in findings.values()):
                # Every phrase found is present (or none is found, the usual case): the same for every rule.
                found = self._present[lexicon] = list(findings)
                if found:
                    self.text_words.update(word.lower() for word in found)
                return found
        found = self._counted[key] = [
            words for words, statuses in findings.items()
            if any(counts(status, outcomes, lexicon, self.rules.assertion) for status in statuses)]
        if found:
            self.text_words.update(word.lower() for word in found)
        return found

    def _find(self, lexicon: str) -> dict[str, set[Status]]:
        """Each phrase of `lexicon` found in the text, with the statuses of its occurrences."""
        findings: dict[str, set[Status]] = {}
        triggers = self.rules.assertion
        exempt = lexicon in triggers.exempt_lexicons
        for term in self.candidates.get(lexicon, ()):
            for match in term.finditer(self.text):
                statuses = findings.setdefault(" ".join(match.group(0).split()), set())
                # Once a phrase is present somewhere it counts for every rule: its other occurrences cannot
                # change that, so their status is not worked out (and the others are dropped).
                if Status.PRESENT not in statuses:
                    status = Status.PRESENT if exempt else status_of(self.text, match.start(), match.end(), triggers)
                    if status is Status.PRESENT:
                        statuses.clear()
                    statuses.add(status)
        return findings


_PRESENT_ONLY = {Status.PRESENT}


def _subject_evidence(facts: _Facts, wanted: SubjectCondition) -> list[str]:
    evidence = []
    for index, subject in enumerate(facts.intel.subjects):
        if wanted.roles and subject.role not in wanted.roles:
            continue
        age = facts.ages[index]
        notes = [f"role {subject.role.value}"]
        if wanted.under_18 is not None:
            if (age is not None and age < 18) != wanted.under_18:
                continue
            notes.append(f"age {age}" if age is not None else "age unknown")
        if wanted.min_age is not None:
            if age is None or age < wanted.min_age:
                continue
            notes.append(f"age {age}")
        if wanted.max_age is not None:
            if age is None or age > wanted.max_age:
                continue
            notes.append(f"age {age}")
        if wanted.identifiable is not None:
            identifiable = bool(subject.name or subject.aliases or subject.address or subject.description
                                or subject.date_of_birth)
            if identifiable != wanted.identifiable:
                continue
            notes.append("named or described" if identifiable else "not identifiable")
        evidence.append(f"subjects[{index}]: " + ", ".join(dict.fromkeys(notes)))
    return evidence


def _evaluate(condition: Condition, facts: _Facts, outcomes: frozenset[str] = frozenset()) -> list[str] | None:
    """The evidence for `condition` if it holds, else None, for a rule giving `outcomes` (which findings
    count for it depends on that: assertion.counts)."""
    intel = facts.intel
    evidence: list[str] = []
    if condition.categories_any:
        hits = [c.value for c in intel.categories if c in condition.categories_any]
        if not hits:
            return None
        evidence.append("categories: " + ", ".join(hits))
    if condition.how_known_in:
        if intel.how_known not in condition.how_known_in:
            return None
        evidence.append(f"how_known: {intel.how_known.value}")
    if condition.lawful_basis_in:
        if intel.lawful_basis not in condition.lawful_basis_in:
            return None
        evidence.append(f"lawful_basis: {intel.lawful_basis.value}")
    if condition.subject_aware is not None:
        if intel.subject_aware is not condition.subject_aware:
            return None
        evidence.append(f"subject_aware: {str(intel.subject_aware).lower()}")
    if condition.subject is not None:
        subjects = _subject_evidence(facts, condition.subject)
        if not subjects:
            return None
        evidence.extend(subjects)
    if condition.no_subject is not None:
        if _subject_evidence(facts, condition.no_subject):
            return None
        evidence.append("no such subject given")
    for flag, items, name in ((condition.has_location, intel.locations, "locations"),
                              (condition.has_vehicle, intel.vehicles, "vehicles")):
        if flag is not None:
            if bool(items) != flag:
                return None
            evidence.append(f"{name}: {len(items)} given")
    if condition.text_any:
        words = [word for lexicon in condition.text_any for word in facts.matches(lexicon, outcomes)]
        if not words:
            return None
        evidence.extend(words)
    for lexicon in condition.text_all:
        words = facts.matches(lexicon, outcomes)
        if not words:
            return None
        evidence.extend(words)
    if condition.text_count is not None:
        signs = list(dict.fromkeys(word.lower() for lexicon in condition.text_count.lexicons
                                   for word in facts.matches(lexicon, outcomes)))
        # One sign matched by two terms ("speaks no english" and "no english") counts once.
        words = [word for word in signs if not any(word != other and word in other for other in signs)]
        if len(words) < condition.text_count.at_least:
            return None
        evidence.extend(words)
    for nested in condition.all_of:
        held = _evaluate(nested, facts, outcomes)
        if held is None:
            return None
        evidence.extend(held)
    if condition.any_of:
        alternatives = [found for nested in condition.any_of
                        if (found := _evaluate(nested, facts, outcomes)) is not None]
        if not alternatives:
            return None
        evidence.extend(alternatives[0])
    # What holds a rule back is judged on present findings only: a feared clearance clears nothing.
    for nested in condition.none_of:
        if _evaluate(nested, facts) is not None:
            return None
    return evidence


# ------------------------------------------------------------------------------------ assessing


def _bounded(evidence: Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(item[:_MAX_EVIDENCE_CHARS] for item in evidence))
    return unique[:_MAX_EVIDENCE]


def _sentence(text: str) -> str:
    return text if len(text) <= 1000 else text[:997] + "..."


def _listed(items: list[str]) -> str:
    items = list(dict.fromkeys(items))
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _thrive(priority: Priority, fired: list[Rule], child_involved: bool) -> Thrive:
    """Threat, harm, risk and vulnerability, each one plain sentence built from the rules that fired."""
    concerns = [rule.concern for rule in fired if {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} & set(rule.outcomes)]
    serious = [rule.concern for rule in fired if rule.priority is Priority.HIGH]
    safeguarding = [rule.concern for rule in fired if Outcome.SAFEGUARDING in rule.outcomes]
    threat = (f"The information points to {_listed(concerns)}." if concerns
              else "No specific threat to anyone is described.")
    if priority is Priority.HIGH:
        harm = f"Serious harm is possible because of {_listed(serious or concerns)}."
        risk = "The risk is high and the information should be acted on first."
    elif priority is Priority.MEDIUM:
        harm = "Harm is possible, but nothing described points to serious harm."
        risk = "The risk is medium and the information should be acted on in turn."
    elif priority is Priority.LOW:
        harm = "No harm to anyone is described; the information adds to the intelligence picture."
        risk = "The risk is low; the information is logged for officers' awareness."
    else:
        harm = "No harm is described."
        risk = "There is no identified risk, so no action is taken."
    if child_involved:
        vulnerability = "A child under 18 is involved, which makes them vulnerable."
    elif safeguarding:
        vulnerability = f"Someone's safety is a concern because of {_listed(safeguarding)}."
    else:
        vulnerability = "No particular vulnerability is described."
    return Thrive(threat=_sentence(threat), harm=_sentence(harm), risk=_sentence(risk),
                  vulnerability=_sentence(vulnerability))


def _handling_code(facts: _Facts) -> tuple[Literal["P", "C"], RuleFiring | None]:
    handling = facts.rules.grading.handling
    evidence = []
    if facts.intel.lawful_basis in handling.conditional_lawful_bases:
        evidence.append(f"lawful_basis: {facts.intel.lawful_basis.value}")
    for lexicon in handling.conditional_text:
        evidence.extend(facts.matches(lexicon))
    if not evidence:
        return "P", None
    return "C", RuleFiring(rule_id="grading.handling_conditions", reason=handling.reason, evidence=_bounded(evidence))


def decision_id_for(intel_id: str, rules_version: str, model_version: str | None = None) -> str:
    """The decision id: the same intel under the same rules (and model) versions always gets the same id."""
    name = f"{intel_id}:{rules_version}" if model_version is None else f"{intel_id}:{rules_version}:{model_version}"
    return uuid.uuid5(DECISION_NAMESPACE, name).hex


def _fact_tokens(intel: SanitisedIntel, ages: list[int | None]) -> list[str]:
    """The form's structured facts as the model's tokens: ticked categories, how it is known, subjects' roles
    and whether each is a child, and whether a place or vehicle is given."""
    tokens = [f"category:{category.value}" for category in intel.categories]
    tokens.append(f"how_known:{intel.how_known.value}")
    for subject, age in zip(intel.subjects, ages, strict=True):
        tokens.append(f"role:{subject.role.value}")
        if age is not None and age < 18:
            tokens.extend(("subject:under_18", f"role:{subject.role.value}:under_18"))
    if intel.locations:
        tokens.append("has:location")
    if intel.vehicles:
        tokens.append("has:vehicle")
    return tokens


def model_inputs(intel: SanitisedIntel, today: date | None = None) -> tuple[str, list[str]]:
    """What the second opinion reads: the text the rules search, and the form's facts as tokens.

    The model is trained on exactly this (`cpi build-model`), so training and scoring cannot drift apart.
    """
    today = today or intel.received_on
    return _searchable_text(intel), _fact_tokens(intel, [subject.age_on(today) for subject in intel.subjects])


_SECOND_OPINION = (  # the outcome targets, and how a sentence names each
    ("crime_desk", "the crime desk"),
    ("safeguarding", "safeguarding"),
)


def _review(
    probabilities: dict[str, float],
    model: TextModel,
    outcomes: list[Outcome],
    priority: Priority,
    routing: list[tuple[Rule, list[str]]],
    facts: _Facts,
) -> Review:
    """Where the second opinion and the rules part ways, or the rules stand on the form's fields alone."""
    reasons: list[ReviewReason] = []

    def disagree(target: str, given: bool, raised: str, lowered: str) -> None:
        p, limits = probabilities[target], model.targets[target].thresholds
        if not given and p >= limits.raise_at:
            reasons.append(ReviewReason(code=f"model_suggests_{target}", reason=raised.format(p=p)))
        elif given and p <= limits.lower_at:
            reasons.append(ReviewReason(code=f"model_doubts_{target}", reason=lowered.format(p=p)))

    for target, label in _SECOND_OPINION:
        disagree(target, Outcome(target) in outcomes,
                 f"The text model gives {label} a {{p:.0%}} chance; the rules did not send it there.",
                 f"The rules sent it to {label}, but the text model gives that only a {{p:.0%}} chance.")
    disagree("no_action", Outcome.NO_ACTION in outcomes,
             "The text model finds nothing to act on ({p:.0%} chance of no action); the rules routed it.",
             "The rules found nothing to act on, but the text model gives no action only a {p:.0%} chance.")
    disagree("high", priority is Priority.HIGH,
             f"The text model gives high priority a {{p:.0%}} chance; the rules gave {priority.value}.",
             "The rules gave high priority, but the text model gives that only a {p:.0%} chance.")

    # Thin evidence: an outcome beyond the log, or high priority, that no word of the text supports, only the
    # form's ticks and fields (a stale category tick, an age).
    def from_text(evidence: list[str]) -> bool:
        return any(item.lower() in facts.text_words for item in evidence)

    thin = []
    for outcome in (Outcome.CRIME_DESK, Outcome.SAFEGUARDING):
        givers = [evidence for rule, evidence in routing if outcome in rule.outcomes]
        if givers and not any(from_text(evidence) for evidence in givers):
            thin.append(outcome.value.replace("_", " "))
    raisers = [evidence for rule, evidence in routing if rule.priority is Priority.HIGH]
    if priority is Priority.HIGH and not any(from_text(evidence) for evidence in raisers):
        thin.append("high priority")
    if thin:
        reasons.append(ReviewReason(code="rules_evidence_thin", reason=(
            f"The rules gave {_listed(thin)} on the form's ticks and fields alone; no words in the text matched.")))
    return Review(needed=bool(reasons), reasons=reasons,
                  scores={target: round(p, 4) for target, p in probabilities.items()})


def assess(
    intel: SanitisedIntel,
    rules: RoutingRules,
    *,
    source_evaluation: Literal[1, 2, 3] = 2,
    today: date | None = None,
    model: TextModel | None = None,
) -> Decision:
    """Assess one piece of sanitised intelligence under `rules`: outcomes, priority, grading, THRIVE, rationale.

    The rules decide. With a `model`, its second opinion is added as `review` (and its version stamped),
    never changing the outcomes or priority.

    Pure and deterministic: the same intel, rules, model, source evaluation and day give the same Decision.
    Ages are worked out at `today`, or at the day the intel was received when `today` is not given.
    """
    facts = _Facts(intel, rules, today or intel.received_on)
    fired: list[tuple[Rule, list[str]]] = []
    for rule, rule_outcomes in zip(rules.rules, facts.index.rule_outcomes, strict=True):
        evidence = _evaluate(rule.when, facts, rule_outcomes)
        if evidence is not None:
            fired.append((rule, evidence))

    suppressing = [(rule, evidence) for rule, evidence in fired if rule.no_action]
    routing = [] if suppressing else [(rule, evidence) for rule, evidence in fired if not rule.no_action]
    chosen = {outcome for rule, _ in routing for outcome in rule.outcomes}
    outcomes: list[Outcome] = [outcome for outcome in _OUTCOME_ORDER if outcome in chosen]

    if outcomes:
        floor = Priority.MEDIUM if {Outcome.CRIME_DESK, Outcome.SAFEGUARDING} & chosen else Priority.LOW
        given = [rule.priority for rule, _ in routing if rule.priority]
        priority = max([floor, *given], key=lambda p: _PRIORITY_RANK[p])
        rationale = [RuleFiring(rule_id=rule.id, reason=rule.reason, evidence=_bounded(evidence))
                     for rule, evidence in routing]
    else:
        outcomes, priority = [Outcome.NO_ACTION], Priority.NONE
        rationale = [RuleFiring(rule_id=rule.id, reason=rule.reason, evidence=_bounded(evidence))
                     for rule, evidence in suppressing]
        if not rationale:
            rationale = [RuleFiring(rule_id="no_action.nothing_found", reason=rules.no_action_reason)]

    handling_code, handling_firing = _handling_code(facts)
    if handling_firing is not None:
        rationale.append(handling_firing)

    child_involved = any(age is not None and age < 18 for age in facts.ages)
    grading = Grading(
        source_evaluation=source_evaluation,
        intelligence_assessment=rules.grading.intelligence_assessment[intel.how_known],
        handling_code=handling_code,
    )
    review = None
    if model is not None:
        probabilities = model.probabilities(facts.text, _fact_tokens(intel, facts.ages))
        review = _review(probabilities, model, outcomes, priority, routing, facts)
    model_version = model.version if model is not None else None
    return Decision(
        decision_id=decision_id_for(intel.intel_id, rules.version, model_version),
        intel_id=intel.intel_id,
        outcomes=outcomes,
        priority=priority,
        grading=grading,
        thrive=_thrive(priority, [rule for rule, _ in routing], child_involved and Outcome.NO_ACTION not in outcomes),
        rationale=rationale[:200],
        rules_version=rules.version,
        intel=intel,
        model_version=model_version,
        review=review,
    )
