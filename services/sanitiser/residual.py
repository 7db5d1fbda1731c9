"""Residual risk, pure: what in a scrubbed intel could still point at whoever shared it.

The scrubber removes what it can derive from the source block and the text's structure. What it
cannot be sure of is scored here, on the sanitised intel alone (the source is not consulted, so the
check also catches identifiers the source block never mentioned): an e-mail, phone or web address
that is not a subject's, a name-like run left in a sign-off, an acronym nothing in the subjects
explains. Above the configured threshold the sanitiser holds the intel for the Intelligence Unit
instead of releasing it. Reasons carry a code (safe for logs and metrics) and an excerpt (only ever
shown to the Intelligence Unit, inside the sealed held record).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from schemas import SanitisedIntel
from services.sanitiser.domain import REDACTION_MARKER, read_scrub_config

DEFAULT_HOLD_THRESHOLD = 0.5

# What each kind of finding adds to the score: an address that reaches someone is enough alone;
# a name-like run or an unexplained acronym is a doubt, and two doubts are enough.
_WEIGHTS = {
    "email_address": 1.0,
    "web_address": 0.6,
    "phone_number": 0.6,
    "name_in_sign_off": 0.5,
    "beside_marker": 0.5,
    "unexplained_acronym": 0.25,
    # Someone named who is not a subject, telling or seeing something ("Jade saw the cards", "Owain said"):
    # the people who report in a report are the writer's colleagues more often than not.
    "person_not_a_subject": 0.5,
    # Premises named like the writer's own ("the Harcourt site", "Lantern Park depot") and not a subject's
    # location: the scrubber cannot tell the writer's place from the subject's.
    "named_premises": 0.5,
}


CODES = frozenset(_WEIGHTS)  # every reason a held report can carry


@dataclass(frozen=True)
class RiskReason:
    code: str  # one of _WEIGHTS: safe in logs and metric labels
    excerpt: str  # the text found: provenance, possibly; only inside the sealed held record


@dataclass(frozen=True)
class ResidualRisk:
    score: float  # 0.0 (nothing found) to 1.0 (capped)
    reasons: tuple[RiskReason, ...]

    def holds(self, threshold: float) -> bool:
        return bool(self.reasons) and self.score >= threshold

    @property
    def codes(self) -> tuple[str, ...]:
        """The distinct reason codes, sorted: what logs and metrics may say."""
        return tuple(sorted({reason.code for reason in self.reasons}))


_EMAIL = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
_WEB = re.compile(r"(?:https?://|www\.)\S+|\b[\w\-]+\.(?:co\.uk|org\.uk|ac\.uk|gov\.uk|sch\.uk|nhs\.uk|com|org|net|uk)\b",
                  re.IGNORECASE)
_PHONE = re.compile(r"(?<![\w])(?:\+|00)?\d[\d \-().]{8,}\d(?![\w])")
_ACRONYM = re.compile(r"(?<![\w.])[A-Z][A-Z&]{1,6}(?![\w])")
_SIGN_OFF = re.compile(
    r"(?im)^[ \t>]*(?:kind |best |warm |many )?(?:regards|thanks|thank you|cheers|best wishes|sincerely|"
    r"yours(?: sincerely| faithfully)?|signed|from|author|typed by|dictated by|cc)\b[^\n]*(?:\n[^\n]*){0,4}"
)
_NAME_RUN = re.compile(r"\b[A-Z][a-z'\u2019\-]+(?:\s+[A-Z][a-z'\u2019\-]+){0,2}\b")

# Acronyms every report uses that say nothing about who wrote it.
_COMMON_ACRONYMS = frozenset(
    "A&E ASB CCTV CSE CCE CSA DOB GP NHS NFA UK MASH DV DA OCG PNC NI ID OK TV PC PCSO SMS "
    "CPI AM PM ASAP FYI NB RE FW FWD TBC VW BMW HGV MOT SIM ATM KFC ICU CAMHS SEN SEND EHCP "
    "ADHD ASD LGBT LGBTQ HIV STI PTSD ADHD AWOL HMO GBH ABH NRM DWP GCSE PE IT RE MP".split()
)


def assess_residual_risk(intel: SanitisedIntel) -> ResidualRisk:
    """Score what in the scrubbed intel could still identify its source, with a reason for each."""
    facts = _subject_text(intel)
    texts = [intel.information, *(s.description or "" for s in intel.subjects),
             *(loc.description for loc in intel.locations), *(v.description or "" for v in intel.vehicles)]
    reasons: list[RiskReason] = []
    for text in texts:
        reasons += _findings(text, facts)
    score = min(1.0, sum(_WEIGHTS[reason.code] for reason in reasons))
    return ResidualRisk(score=round(score, 3), reasons=tuple(reasons))


def _subject_text(intel: SanitisedIntel) -> str:
    """Everything the sharer told us about the subjects themselves, lower-cased, for 'is it theirs?'."""
    parts: list[str] = []
    for subject in intel.subjects:
        parts += [subject.name or "", *subject.aliases, subject.address or ""]
    parts += [vehicle.registration or "" for vehicle in intel.vehicles]
    parts += [location.postcode or "" for location in intel.locations]
    parts += [location.description for location in intel.locations]  # the places the report is about
    return "\n".join(parts).lower()


def _findings(text: str, facts: str) -> list[RiskReason]:
    found: list[RiskReason] = []
    for match in _EMAIL.finditer(text):
        if match.group().lower() not in facts:
            found.append(RiskReason("email_address", match.group()))
    emails = [m.span() for m in _EMAIL.finditer(text)]
    for match in _WEB.finditer(text):
        if not any(s <= match.start() < e for s, e in emails) and match.group().lower() not in facts:
            found.append(RiskReason("web_address", match.group()))
    for match in _PHONE.finditer(text):
        if sum(c.isdigit() for c in match.group()) >= 10 and not _subjects_number(text, match.start()):
            found.append(RiskReason("phone_number", match.group()))
    closing = len(text) - len("\n".join(text.rstrip().splitlines()[-5:]))  # only a closing block signs off
    for block in _SIGN_OFF.finditer(text, max(0, closing)):
        for name in _NAME_RUN.finditer(block.group()):
            word = name.group()
            if word.lower() not in facts and word.lower() not in _SIGN_OFF_WORDS:
                found.append(RiskReason("name_in_sign_off", word))
    for line in text.rstrip().splitlines()[-3:]:
        lone = _LONE_NAME.fullmatch(line.strip())
        if lone and lone.group(1).lower() not in facts and _could_name_someone(lone.group(1).split()[0]):
            found.append(RiskReason("name_in_sign_off", lone.group(1)))
    for match in [*_AFTER_MARKER.finditer(text), *_BEFORE_MARKER.finditer(text)]:
        # A capitalised word right beside a removal is where the scrubber most often stops one word short:
        # "[removed] (Sister, A&E ...)", "Gwenno @ [removed]", "[removed], Det Comd", "lead Janet Orme".
        run = match.group(1)
        # After "(", ",", "@" or "|" a capital is a name's, not a sentence's, even on an ordinary word
        # ("[removed] (Sister, A&E ...)"); after a space it may just begin the sentence ("[removed] Now").
        set_apart = bool(re.search(r"[,(@|/]", match.group()))
        words = [w for w in re.findall(r"[A-Z][\w&'\u2019\-]*", run) if _could_name_someone(w, set_apart)]
        if (words and not _PLACE_OR_THING.search(run) and " ".join(words).lower() not in facts
                and not any(w.lower() in facts for w in words)):
            found.append(RiskReason("beside_marker", " ".join(words)))
    for match in _WITNESS.finditer(text):
        words = match.group(1).split()
        if (match.group(1).lower() not in facts and not any(w.lower() in facts for w in words)
                and not _PLACE_OR_THING.search(match.group(1)) and all(_could_name_someone(w) for w in words)):
            found.append(RiskReason("person_not_a_subject", match.group(1)))
    for match in _PREMISES.finditer(text):
        words = match.group(1).split()
        if not any(w.lower() in facts for w in words) and any(_could_name_someone(w, True) for w in words):
            found.append(RiskReason("named_premises", match.group().strip()))
    for match in _ACRONYM.finditer(text):
        if (match.group() not in _COMMON_ACRONYMS and match.group().lower() not in facts
                and not _SHOUTED.search(text, max(0, match.start() - 12), min(len(text), match.end() + 12))):
            found.append(RiskReason("unexplained_acronym", match.group()))
    return found


_MARKER = re.escape(REDACTION_MARKER)
# A closing line that is a name alone: "Marcus", "Ellie G", "- Jo".
_LONE_NAME = re.compile(r"[-~ ]*([A-Z][a-z'\u2019\-]+(?:[ \t]+[A-Z][a-z'\u2019\-]*\.?)?)[ \t,.!x]*")
_AFTER_MARKER = re.compile(_MARKER + r"[ \t]*[,(\-@|/:]?[ \t]*((?:[A-Z][\w&'\u2019\-]*\.?[ \t,]*){1,3})")
_BEFORE_MARKER = re.compile(r"((?:[A-Z][\w&'\u2019\-]*\.?[ \t]*){1,3})[,(\-@|/]?[ \t]*" + _MARKER)
# Words that begin sentences or name no one: not a sign that a name was left behind.
_ORDINARY = frozenset(
    "the a an he she they it his her their we i you this that these those there then when where what who "
    "mum dad mother father on at in of to for and but or so if as by from with after before since today "
    "yesterday tonight monday tuesday wednesday thursday friday saturday sunday january february march april "
    "may june july august september october november december please also both all some one two three police "
    "pc dc ds re fwd fw subject sent to cc date tel mob email e-mail ref dear hi hello thanks regards kind best "
    "nb ps pp am pm dob yp pt su sw gp a&e nhs csc mash contact call ring following lad boy girl patient pupil "
    "student resident man woman male female obrigado diolch thanks cheers fyi urgent update note concern "
    "safeguarding re: info private confidential english welsh scottish irish polish romanian syrian afghan "
    "eritrean somali kurdish albanian vietnamese chinese cantonese mandarin arabic urdu punjabi bengali "
    "portuguese spanish french italian lithuanian latvian russian ukrainian nigerian ghanaian british "
    "european asian african sat sri akal salaam salam assalamu alaikum shalom namaste weds thurs tues "
    "mon fri sun jan feb mar apr jun jul aug sep sept oct nov dec now seen last different since staff "
    "kids".split()
)


# A name (one or two capitalised words) doing what people who report do: say, see, tell, ring, notice;
# inside a sentence, where a capital says it is a name ("and Jade saw", not "Nothing was").
_WITNESS = re.compile(
    r"(?<![\w'\u2019\-])(?:[a-z]+,?|[,;)])[ \t]+([A-Z][a-z'\u2019\-]+(?:[ \t]+[A-Z][a-z'\u2019\-]+)?)[ \t]+"
    r"(?:said|says|saw|sees|noticed|heard|"
    r"told|tells|rang|called|reported|spoke|mentioned|raised|flagged|observed|witnessed|overheard|found|asked|"
    r"confirmed|agreed|thinks|thought|knows|checked|chased|e-?mailed|messaged|texted|phoned|noted|passed|shared|"
    r"logged|recorded|advised|suggested|explained|discussed|spotted|clocked|wrote|added|has|had|was|is|will|would|"
    r"can|could|did|does)\b")
# One to three capitalised words and the kind of premises an organisation works from.
_PREMISES = re.compile(r"(?<![\w'\u2019\-])((?:[A-Z][\w'\u2019\-]+[ \t]+){1,3})(?i:site|campus|branch|depot|office|"
                       r"offices|base|hq|centre|hall|library|station|unit|ward|surgery|clinic|practice|hub|project|"
                       r"store|shop)\b")
# Two words in capitals together, or capitals beside digits: a shouted phrase or a number plate, not an
# organisation's initials.
_SHOUTED = re.compile(r"\b[A-Z]{2,}[ \t]+[A-Z]{2,}\b|\b[A-Z]{1,3}\d{1,3}[ \t]+[A-Z]{2,4}\b|"
                      r"\b\w*\d\w*[ \t]+[A-Z]{2,5}\b")
# A run ending in a street or place word, a vehicle, or a quoted alias is a fact, not a name left behind.
_PLACE_OR_THING = re.compile(
    r"\b(?:road|rd|street|st|lane|avenue|ave|way|close|drive|park|court|rise|crescent|terrace|place|gardens|grove|"
    r"hill|row|square|parade|walk|mews|estate|green|end|bridge|station|centre|house|flats|court)\b|"
    r"\b(?:ford|vauxhall|bmw|audi|mercedes|vw|volkswagen|toyota|nissan|kia|honda|peugeot|renault|skoda|seat|"
    r"fiat|citroen|hyundai|mini|range rover|land rover|lexus|volvo|mazda|tesla|transit)\b|['\u2019\"]", re.IGNORECASE)


def _could_name_someone(word: str, set_apart: bool = False) -> bool:
    lowered = word.lower().strip("'\u2019-")
    return (len(lowered) > 1 and lowered not in _ORDINARY and (set_apart or lowered not in _english_words())
            and word not in _COMMON_ACRONYMS and not any(c.isdigit() for c in word)
            and not lowered.rstrip("s").endswith("day"))


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """Ordinary English words ("Now", "Different", "Last"): the scrubber's own list of words that are
    never a short name, and of names that are also words."""
    config = read_scrub_config()
    return config.short_form_exclusions | config.common_words


_SIGN_OFF_WORDS = frozenset(
    "regards kind best warm many thanks thank you cheers wishes sincerely yours faithfully signed from "
    "author typed by dictated cc".split()
)
# "her number is 07700 900123", "his mobile": a number said to be a subject's is a fact, not a leak.
_THEIRS = re.compile(r"\b(?:his|her|their|he|she|they|subject|mum|dad|mother|father|partner|boyfriend|"
                     r"girlfriend|brother|sister)\b[^.\n]{0,40}$", re.IGNORECASE)


def _subjects_number(text: str, start: int) -> bool:
    return _THEIRS.search(text[max(0, start - 60):start]) is not None
