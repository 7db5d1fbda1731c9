"""The router's second opinion: a calibrated linear text model, scored in plain Python.

The artefact (`model.json`, built by `cpi build-model` from the labelled corpora) is JSON, not a pickle: the
vocabularies and idf weights of three feature blocks, and per target the weights, intercept, Platt
calibration and the thresholds at which the model's view counts as disagreeing with the rules. Scoring here
repeats exactly what scikit-learn's vectorizers and `CalibratedClassifierCV` do (a test holds the two to
1e-9), so the router loads no pickle and needs no numpy.

Feature blocks, each as scikit-learn builds it:
- `word`: lower-cased tokens of two or more word characters, n-grams; tf (optionally 1 + log tf) times idf,
  L2-normalised.
- `char`: lower-cased character n-grams inside whitespace-separated words padded with a space (`char_wb`);
  tf times idf, L2-normalised.
- `facts`: the form's structured facts as tokens (ticked categories, subject roles, ages under 18), 0 or 1.

Pure: stdlib only. The one piece of I/O is `load_model`, which reads the artefact once at start-up.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from operator import itemgetter, mul
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.common.errors import ConfigurationError

if TYPE_CHECKING:
    from services.common.settings import RouterSettings

DEFAULT_MODEL_PATH = Path(__file__).with_name("model.json")
FORMAT = "cpi-router-model/1"
# What each target's probability is the probability of.
TARGETS = ("crime_desk", "safeguarding", "no_action", "high")
# scikit-learn's default token_pattern.
_WORD = re.compile(r"(?u)\b\w\w+\b")
# tf for the counts a report has (sublinear: 1 + ln tf), looked up rather than worked out per term.
_LINEAR = [float(count) for count in range(256)]
_SUBLINEAR = [0.0, *(1.0 + math.log(count) for count in range(1, 256))]


def artefact_version(artefact: Mapping[str, Any]) -> str:
    """The version stamped on decisions: a hash of everything in the artefact except the stamp itself."""
    body = {key: value for key, value in artefact.items() if key != "version"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "m-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Thresholds:
    """The model disagrees with a rules' "no" when p >= `raise_at`, with a rules' "yes" when p <= `lower_at`."""

    raise_at: float
    lower_at: float


@dataclass(frozen=True)
class _Target:
    # Per block (word, char, facts), each column's weight times its idf: a block's score is then
    # sum(tf * weight * idf) / norm, with no per-report multiplication by idf.
    weights: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]
    intercept: float
    platt_a: float
    platt_b: float
    thresholds: Thresholds


class _Block:
    """One tf-idf block's vocabulary (term -> column) and idf."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        vocabulary: list[str] = spec["vocabulary"]
        self.index = {term: column for column, term in enumerate(vocabulary)}
        self.idf: tuple[float, ...] = tuple(spec.get("idf") or [1.0] * len(vocabulary))
        self.ngram_range: tuple[int, int] = tuple(spec.get("ngram_range", (1, 1)))
        self.sublinear_tf = bool(spec.get("sublinear_tf", False))

    def scores(self, counts: Mapping[int, int], targets: Iterable[tuple[float, ...]]) -> list[float]:
        """Each target's share of the score from this block: its tf-idf vector, L2-normalised as
        TfidfVectorizer(norm="l2") gives it, times the target's weights (already multiplied by idf)."""
        if not counts:
            return [0.0 for _ in targets]
        values = list(counts.values())
        table = _SUBLINEAR if self.sublinear_tf else _LINEAR
        if max(values) < len(table):
            tfs = list(map(table.__getitem__, values))
        else:
            tfs = [1.0 + math.log(count) if self.sublinear_tf else float(count) for count in values]
        # One gather per vector (itemgetter) rather than a lookup per column per target: a third of the time.
        gather = itemgetter(*counts) if len(counts) > 1 else lambda row: (row[next(iter(counts))],)
        weighted = list(map(mul, tfs, gather(self.idf)))
        norm = math.sqrt(sum(map(mul, weighted, weighted)))
        if not norm:
            return [0.0 for _ in targets]
        return [sum(map(mul, tfs, gather(weights))) / norm for weights in targets]


class TextModel:
    """A loaded artefact: `probabilities(text, facts)` gives each target's calibrated probability."""

    def __init__(self, artefact: Mapping[str, Any]) -> None:
        if artefact.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} artefact")
        if artefact.get("version") != artefact_version(artefact):
            raise ValueError("the artefact's version does not match its content (edited or truncated?)")
        self.version: str = artefact["version"]
        features = artefact["features"]
        self._word, self._char, self._facts = (_Block(features[name]) for name in ("word", "char", "facts"))
        self.targets: dict[str, _Target] = {}
        for name in TARGETS:
            spec = artefact["targets"][name]
            weights = spec["weights"]
            self.targets[name] = _Target(
                weights=(tuple(map(mul, weights["word"], self._word.idf)),
                         tuple(map(mul, weights["char"], self._char.idf)), tuple(weights["facts"])),
                intercept=float(spec["intercept"]),
                platt_a=float(spec["platt"]["a"]),
                platt_b=float(spec["platt"]["b"]),
                thresholds=Thresholds(raise_at=float(spec["thresholds"]["raise_at"]),
                                      lower_at=float(spec["thresholds"]["lower_at"])),
            )
        # A word's character n-grams depend on the word alone, so they are worked out once per word.
        self._char_columns = lru_cache(maxsize=65536)(self._columns_of_word)

    def _columns_of_word(self, word: str) -> tuple[int, ...]:
        padded = " " + word + " "
        length = len(padded)
        low, high = self._char.ngram_range
        index = self._char.index
        grams: list[str] = []
        for n in range(low, high + 1):
            # As scikit-learn's _char_wb_ngrams: a word shorter than n is counted once, whole.
            grams.extend(padded[offset:offset + n] for offset in range(max(1, length - n + 1)))
            if length - n + 1 <= 1:
                break
        return tuple(index[gram] for gram in grams if gram in index)

    def _word_counts(self, lower: str) -> Counter[int]:
        tokens = _WORD.findall(lower)
        low, high = self._word.ngram_range
        grams: list[str] = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        index = self._word.index
        return Counter(index[gram] for gram in grams if gram in index)

    def probabilities(self, text: str, facts: Iterable[str]) -> dict[str, float]:
        """Each target's calibrated probability for one report (text as the rules read it, and its facts)."""
        lower = text.lower()
        char_counts = Counter(chain.from_iterable(map(self._char_columns, lower.split())))
        targets = list(self.targets.values())
        word = self._word.scores(self._word_counts(lower), [target.weights[0] for target in targets])
        char = self._char.scores(char_counts, [target.weights[1] for target in targets])
        present = [self._facts.index[fact] for fact in set(facts) if fact in self._facts.index]
        result = {}
        for position, (name, target) in enumerate(self.targets.items()):
            score = target.intercept + word[position] + char[position]
            score += sum(map(target.weights[2].__getitem__, present))
            # Platt scaling as scikit-learn's _SigmoidCalibration: expit(-(a * f + b)).
            exponent = target.platt_a * score + target.platt_b
            result[name] = 1.0 / (1.0 + math.exp(exponent)) if exponent < 700 else 0.0
        return result


def load_model(path: Path | None = None) -> TextModel:
    """Read and check the model artefact; a missing or altered file raises ConfigurationError."""
    path = path or DEFAULT_MODEL_PATH
    try:
        artefact = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigurationError(f"{path}: cannot read the router's model: {error}") from error
    try:
        return TextModel(artefact)
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigurationError(f"{path}: not a valid router model: {error!r}") from error


def second_opinion(settings: RouterSettings) -> TextModel | None:
    """The model the settings ask for, loaded once at start-up (a bad artefact stops the process), or None."""
    return load_model(settings.model_path) if settings.second_opinion else None
