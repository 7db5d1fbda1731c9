"""Assertion status of a finding (NegEx / ConText style): is what a lexicon matched said to be so?

A lexicon match ("knife", "goes missing", "selling weed") is only a *finding* once we know how the report
states it. Trigger phrases before or after the match, scoped to its clause or sentence, give it one status:

- ``present``      — stated as so ("he carries a knife"); the default.
- ``negated``      — denied or checked and ruled out ("no sign of a knife", "denies dealing", "the claim was
  unfounded", "not seen with older males").
- ``hypothetical`` — conditional, feared or uncertain ("if he were to carry a knife", "worried that he might
  be going missing", "not sure whether he is being groomed").
- ``historical``   — over and done ("used to sell cannabis", "no longer goes missing", "served time for
  supply").
- ``general``      — about people in general or a topic of talk, not an event ("a lesson about knife crime",
  "county lines in the area generally").

Someone else's account or someone else's harm is not a status of its own: "other pupils say he carries a
knife" and "his brother was stabbed" are present findings. Who told it is graded by `how_known` (hearsay is
a D, not a reason to drop it), and harm to a third party is still harm the police should hear of. A concern
"checked and ruled out" is negated ("the dealing was ruled out after a visit"); a clearance stated as a
sentence of its own ("no concerns found") is the rules' `concern_cleared` lexicon, not a status.

Scope (as NegEx): a trigger before the match reaches to the start of its clause (clause triggers) or only a
few words (window triggers); a trigger after the match reaches back a few words. A clause ends at a
sentence end, at a terminator ("but", "however", "although", "who", ...) and at "and" or a comma when a new
verb phrase or subject follows. Sentence triggers ("what would happen if") reach across clauses to the
sentence start. Pseudo-triggers ("no doubt", "not only", "not unusual", "cannot be ruled out") contain a
negation word but do not negate, so they are taken out before the negation triggers are looked for.
Several cues may apply; the status is the first of negated, general, hypothetical, historical that does.

Routing policy (DESIGN.md, safety first) — what a rule does with each status (`counts`):

- ``present`` counts for every rule.
- ``negated`` counts for no rule: a concern the report denies or rules out must not raise an outcome.
- ``general`` counts for no rule: talk about a topic or an area in general names no person, place or event,
  so there is nothing specific to log, investigate or safeguard.
- ``hypothetical`` counts only for safeguarding: a worry or fear for someone's safety *is* a safety concern
  ("worried he might be being exploited" is safeguarding, high for a child), so uncertainty never silently
  drops a child-at-risk safeguarding; but a conditional or feared act is not an offence that has happened, so
  it raises no crime desk.
- ``historical`` counts only for safeguarding (a past pattern — missing episodes, exploitation — is still a
  risk to someone's safety), and for crime desk only for the lexicons named in `historical_offences`
  (non-recent sexual offences are still investigated); a past offence served or stopped ("served time for
  supply, clean for two years") is not a crime to task now.

Pure: stdlib only. The trigger lists are data (the rules file's `assertion` section), never code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from services.router.phrases import phrase_pattern, phrase_regex


class Status(StrEnum):
    """How the report states a finding."""

    PRESENT = "present"
    NEGATED = "negated"
    HYPOTHETICAL = "hypothetical"
    HISTORICAL = "historical"
    GENERAL = "general"


@dataclass(frozen=True)
class Triggers:
    """The cue phrases that give a finding its status, and where their scope ends.

    `*n't` (a leading star) matches a word ending, so it covers wasn't, couldn't and won't. Validated by
    pydantic when the rules file is loaded (unknown keys are refused).
    """

    # Read by pydantic when it validates the rules file (a stdlib dataclass, so this module needs no pydantic).
    __pydantic_config__ = {"extra": "forbid"}

    # Window triggers reach this many words from the match.
    window_words: int
    # Negated: a few words before ("no knives", "never seen with"), the whole clause before ("no evidence
    # of", "nobody"), or a few words after ("drug use is denied", "the claim was unfounded").
    negated_before: tuple[str, ...]
    negated_clause: tuple[str, ...]
    negated_after: tuple[str, ...]
    # Hypothetical, feared or uncertain: the clause before ("if", "in case", "worried it was"), the whole
    # sentence before, even across a relative clause ("what would happen to someone who carried a knife").
    hypothetical_clause: tuple[str, ...]
    hypothetical_sentence: tuple[str, ...]
    # Historical: a few words before ("no longer"), the clause before ("used to", "served time for"), or a
    # few words after ("... in the past", "... has since stopped").
    historical_before: tuple[str, ...]
    historical_clause: tuple[str, ...]
    historical_after: tuple[str, ...]
    # A topic of talk or people in general: the clause before ("a lesson about"), the sentence before
    # ("training session"), or a few words after ("... in the area generally").
    general_clause: tuple[str, ...]
    general_sentence: tuple[str, ...]
    general_after: tuple[str, ...]
    # Phrases that hold a negation word but do not negate ("no doubt", "not only", "not unusual").
    pseudo: tuple[str, ...]
    # A clause ends at these ("no weapons were seen but he was stabbed": stabbed is present).
    terminators: tuple[str, ...]
    # A clause also ends at one of `joins` when one of `openers` follows ("speaks no English and sleeps on
    # the floor": sleeps is present; "no knives and guns": guns is still negated).
    joins: tuple[str, ...]
    openers: tuple[str, ...]
    # Lexicons whose phrases are negative statements themselves ("nothing of concern", "no knife was found"):
    # always present, or a cue beside one would cancel the clearance it states.
    exempt_lexicons: tuple[str, ...] = ()
    # Lexicons whose historical findings still count for the crime desk (non-recent sexual offences).
    historical_offences: tuple[str, ...] = ()


_SENTENCE_MARKS = ".!?;:"
_SENTENCE_END = re.compile(f"[{re.escape(_SENTENCE_MARKS)}]")
_WORD = re.compile(r"[\w'\u2019£]+")


@lru_cache(maxsize=64)
def _new_clause_pattern(joins: tuple[str, ...], openers: tuple[str, ...]) -> re.Pattern[str] | None:
    """A join ("and", "but", ",") followed by a word that opens a new clause (a verb or a new subject)."""
    if not joins or not openers:
        return None
    opener = phrase_regex(openers, word_end=r"(?![\w'\u2019])")
    return re.compile(rf"(?:{phrase_regex(joins)})\s+(?=(?:{opener}))", re.IGNORECASE)


def _found(cues: tuple[str, ...], text: str) -> bool:
    pattern = phrase_pattern(cues)
    return pattern is not None and pattern.search(text) is not None


def _without_pseudo(text: str, triggers: Triggers) -> str:
    """`text` with its pseudo-triggers blanked out (same length), so their negation words negate nothing."""
    pattern = phrase_pattern(triggers.pseudo)
    return text if pattern is None else pattern.sub(lambda match: " " * len(match.group(0)), text)


def _answers_cut(before: str, triggers: Triggers) -> str:
    """A negation word followed by a comma is an answer, not a negation of what follows ("when told no, he
    pulled a knife"), so it is turned into a plain comma."""
    pattern = phrase_pattern(triggers.negated_before)
    if pattern is None:
        return before
    answers = [cue.span() for cue in pattern.finditer(before) if before[cue.end():].lstrip().startswith(",")]
    for answer_start, answer_end in reversed(answers):
        before = before[:answer_start] + "," + before[answer_end:]
    return before


_STATUS_CUES = ("negated_before", "negated_clause", "negated_after", "hypothetical_clause", "hypothetical_sentence",
                "historical_before", "historical_clause", "historical_after", "general_clause", "general_sentence",
                "general_after")


@lru_cache(maxsize=16)
def _any_cue(triggers: Triggers) -> re.Pattern[str] | None:
    """Every cue that can give a status other than present, as one pattern."""
    return phrase_pattern(tuple(cue for field in _STATUS_CUES for cue in getattr(triggers, field)))


def _cue_free(sentence: str, triggers: Triggers) -> bool:
    """Whether no cue is anywhere in `sentence`, as written or as its words (the window cues read words): then
    every finding in it is present. Every text a cue is looked for in below is a part of the sentence or a run
    of its words, so this decides most findings with two scans instead of a dozen."""
    pattern = _any_cue(triggers)
    return pattern is None or (pattern.search(sentence) is None
                               and pattern.search(" ".join(_WORD.findall(sentence))) is None)


def prepare(triggers: Triggers) -> None:
    """Compile every cue pattern now (at start-up), rather than on the first report that needs it."""
    _any_cue(triggers)
    _new_clause_pattern(triggers.joins, triggers.openers)
    for field in (*_STATUS_CUES, "pseudo", "terminators"):
        phrase_pattern(getattr(triggers, field))


def status_of(text: str, start: int, end: int, triggers: Triggers) -> Status:
    """The assertion status of the finding at `text[start:end]`, from the cues in its clause and sentence."""
    sentence_start = max(text.rfind(mark, 0, start) for mark in _SENTENCE_MARKS) + 1
    sentence_end_match = _SENTENCE_END.search(text, end)
    sentence_end = sentence_end_match.start() if sentence_end_match else len(text)
    if _cue_free(text[sentence_start:sentence_end], triggers):
        return Status.PRESENT
    clause_start = sentence_start
    after = text[end:sentence_end]
    for pattern in (phrase_pattern(triggers.terminators), _new_clause_pattern(triggers.joins, triggers.openers)):
        if pattern is None:
            continue
        # Searched up to the end of the match, so that a match which itself opens a new clause (", asking
        # him for pics") is cut off from a cue before it.
        cuts = [cut.end() for cut in pattern.finditer(text, clause_start, end) if cut.end() <= start]
        if cuts:
            clause_start = cuts[-1]
        cut = pattern.search(after)
        if cut:
            after = after[: cut.start()]
    in_sentence = text[sentence_start:start]
    clause = text[clause_start:start]
    window = triggers.window_words
    words_before = " ".join(_WORD.findall(clause)[-window:])
    words_after = " ".join(_WORD.findall(after)[:window])
    # Negation cues are looked for with the pseudo-triggers taken out ("no doubt he carries a knife").
    negatable = _without_pseudo(clause, triggers)
    negatable_before = " ".join(_WORD.findall(_answers_cut(negatable, triggers))[-window:])
    negatable_after = " ".join(_WORD.findall(_without_pseudo(after, triggers))[:window])

    # In order of precedence: when several cues apply the first wins (a denial outweighs a worry, a worry
    # outweighs history), so the later ones are not looked for.
    if (_found(triggers.negated_clause, negatable) or _found(triggers.negated_before, negatable_before)
            or _found(triggers.negated_after, negatable_after)):
        return Status.NEGATED
    if (_found(triggers.general_sentence, in_sentence) or _found(triggers.general_clause, clause)
            or _found(triggers.general_after, words_after)):
        return Status.GENERAL
    if _found(triggers.hypothetical_sentence, in_sentence) or _found(triggers.hypothetical_clause, clause):
        return Status.HYPOTHETICAL
    if (_found(triggers.historical_clause, clause) or _found(triggers.historical_before, words_before)
            or _found(triggers.historical_after, words_after)):
        return Status.HISTORICAL
    return Status.PRESENT


# Which outcomes a finding of each status may raise (see the policy above); PRESENT raises any.
_RAISES: dict[Status, frozenset[str]] = {
    Status.NEGATED: frozenset(),
    Status.GENERAL: frozenset(),
    Status.HYPOTHETICAL: frozenset({"safeguarding"}),
    Status.HISTORICAL: frozenset({"safeguarding"}),
}


def counts(status: Status, outcomes: frozenset[str], lexicon: str, triggers: Triggers) -> bool:
    """Whether a finding of `status` (from `lexicon`) may help a rule giving `outcomes` fire.

    A rule that raises anything a non-present finding may not raise (crime desk, an intelligence log, a
    priority alone) does not see that finding: a rule is one judgement, so it needs present evidence for all
    it gives. A rule with no outcomes (a no-action rule, or a condition that only holds a rule back) sees
    present findings only.
    """
    if status is Status.PRESENT:
        return True
    if not outcomes:
        return False
    allowed = _RAISES[status]
    if status is Status.HISTORICAL and lexicon in triggers.historical_offences:
        allowed = allowed | {"crime_desk"}
    return outcomes <= allowed
