"""`cpi build-model`: train the router's second opinion on the labelled TRAINING corpora, reproducibly.

scikit-learn (the `model` extra) is needed here only: the router scores the JSON artefact this writes with
plain Python (services/router/model.py). Same corpora, settings, seed and library versions: the same bytes.

Per target (crime_desk, safeguarding, no_action, high priority): a logistic regression over word and character
n-gram tf-idf and the form's facts, calibrated by Platt scaling on cross-validated scores
(`CalibratedClassifierCV(method="sigmoid", ensemble=False)`: one model fitted on all the data, so one weight
vector to ship). `--select` chooses the settings by cross-validation that leaves whole batches out (a batch is
one writer's style, so this asks how the model does on a writer it has not seen), on training data only.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy
import scipy.sparse
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score
from sklearn.model_selection import GroupKFold, StratifiedKFold

from services.router.corpora import DEFAULT_CORPORA_DIR, cases, intel_of, training_files
from services.router.domain import model_inputs
from services.router.model import FORMAT, TARGETS, artefact_version


@dataclass(frozen=True)
class BuildSettings:
    """How the model is built. `c`, `class_weight` and `char_ngrams` are what `cpi build-model --select` chose
    by the rule beside GRID (on 1,170 training reports, 21 files: best mean average precision 0.9891 at C 64,
    chars 2-5; C 16, chars 3-5, balanced 0.9881, within 0.001 and cheaper)."""

    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    min_df: int = 2
    sublinear_tf: bool = True
    c: float = 16.0
    class_weight: str | None = "balanced"
    calibration_folds: int = 5
    # The share of training reports, out of fold, on which each direction of disagreement may be raised
    # wrongly: "the rules said no, the model yes" and "the rules said yes, the model no". Safety targets
    # (under-triage, safeguarding missed) get a larger budget: a missed one costs more than a review.
    false_flag_budget: float = 0.05
    safety_false_flag_budget: float = 0.10
    seed: int = 20261120


SAFETY_TARGETS = ("safeguarding", "high")


@dataclass(frozen=True)
class Example:
    text: str
    facts: str  # space-separated tokens
    labels: dict[str, int]
    group: str  # the file it came from


def examples(directory: Path = DEFAULT_CORPORA_DIR) -> tuple[list[Example], dict[str, str]]:
    """Every training case as model input and labels, and each training file's sha256 (held-out files never)."""
    found: list[Example] = []
    hashes: dict[str, str] = {}
    number = 0
    for name in training_files(directory):
        path = directory / name
        hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        for case in cases(path):
            text, facts = model_inputs(intel_of(number, case))
            number += 1
            outcomes = set(case["outcomes"])
            labels = {"crime_desk": int("crime_desk" in outcomes), "safeguarding": int("safeguarding" in outcomes),
                      "no_action": int("no_action" in outcomes), "high": int(case["priority"] == "high")}
            found.append(Example(text=text, facts=" ".join(facts), labels=labels, group=name))
    return found, hashes


class Features:
    """The three feature blocks, fitted on some examples; `matrix` stacks them as the model sees them."""

    def __init__(self, settings: BuildSettings, train: list[Example]) -> None:
        self.word = TfidfVectorizer(ngram_range=settings.word_ngrams, min_df=settings.min_df,
                                    sublinear_tf=settings.sublinear_tf, dtype=np.float64)
        self.char = TfidfVectorizer(analyzer="char_wb", ngram_range=settings.char_ngrams, min_df=settings.min_df,
                                    sublinear_tf=settings.sublinear_tf, dtype=np.float64)
        facts_pattern = r"\S+"  # the facts are space-separated tokens
        self.facts = CountVectorizer(token_pattern=facts_pattern, lowercase=False, binary=True, dtype=np.float64)
        self.word.fit([e.text for e in train])
        self.char.fit([e.text for e in train])
        self.facts.fit([e.facts for e in train])

    def matrix(self, items: list[Example]) -> scipy.sparse.csr_matrix:
        texts = [e.text for e in items]
        return scipy.sparse.hstack([self.word.transform(texts), self.char.transform(texts),
                                    self.facts.transform([e.facts for e in items])], format="csr")

    def sizes(self) -> tuple[int, int, int]:
        return len(self.word.vocabulary_), len(self.char.vocabulary_), len(self.facts.vocabulary_)


def _classifier(settings: BuildSettings) -> LogisticRegression:
    return LogisticRegression(C=settings.c, class_weight=settings.class_weight, solver="liblinear",
                              random_state=settings.seed, max_iter=1000)


def _calibrated(settings: BuildSettings) -> CalibratedClassifierCV:
    folds = StratifiedKFold(settings.calibration_folds, shuffle=True, random_state=settings.seed)
    return CalibratedClassifierCV(_classifier(settings), method="sigmoid", cv=folds, ensemble=False)


def _groups(items: list[Example]) -> GroupKFold:
    return GroupKFold(n_splits=min(7, len({e.group for e in items})))


def out_of_fold(items: list[Example], settings: BuildSettings) -> dict[str, np.ndarray]:
    """Calibrated probabilities for every training example from models that never saw its batch."""
    result = {target: np.zeros(len(items)) for target in TARGETS}
    groups = [e.group for e in items]
    for train, test in _groups(items).split(items, groups=groups):
        train_items, test_items = [items[i] for i in train], [items[i] for i in test]
        features = Features(settings, train_items)
        x_train, x_test = features.matrix(train_items), features.matrix(test_items)
        for target in TARGETS:
            y = np.array([e.labels[target] for e in train_items])
            result[target][test] = _calibrated(settings).fit(x_train, y).predict_proba(x_test)[:, 1]
    return result


def thresholds(items: list[Example], probabilities: dict[str, np.ndarray], settings: BuildSettings) -> dict[str, Any]:
    """Per target, where the model's view counts as disagreeing with a rules' "no" (raise_at) and "yes" (lower_at):
    at most the false-flag budget of the training negatives reach raise_at, and of the positives fall to lower_at."""
    chosen = {}
    for target in TARGETS:
        p = probabilities[target]
        y = np.array([e.labels[target] for e in items])
        budget = settings.safety_false_flag_budget if target in SAFETY_TARGETS else settings.false_flag_budget
        raise_at = float(np.quantile(p[y == 0], 1 - budget, method="higher"))
        lower_at = float(np.quantile(p[y == 1], budget, method="lower"))
        # Never disagree on the model's own side of even odds.
        chosen[target] = {"raise_at": round(max(raise_at, 0.5), 6), "lower_at": round(min(lower_at, 0.5), 6)}
    return chosen


@dataclass
class Fitted:
    """The fitted scikit-learn objects, kept so a test can hold the plain-Python scorer to them."""

    features: Features
    models: dict[str, CalibratedClassifierCV]


def build(
    directory: Path = DEFAULT_CORPORA_DIR, settings: BuildSettings | None = None
) -> tuple[dict[str, Any], Fitted]:
    """The artefact (a JSON-ready dict, version stamped) and the fitted objects it was taken from."""
    settings = settings or BuildSettings()
    items, hashes = examples(directory)
    features = Features(settings, items)
    x = features.matrix(items)
    word_size, char_size, _ = features.sizes()
    models: dict[str, CalibratedClassifierCV] = {}
    targets: dict[str, Any] = {}
    limits = thresholds(items, out_of_fold(items, settings), settings)
    for target in TARGETS:
        y = np.array([e.labels[target] for e in items])
        model = models[target] = _calibrated(settings).fit(x, y)
        pair = model.calibrated_classifiers_[0]
        coef = pair.estimator.coef_[0]
        targets[target] = {
            "weights": {"word": coef[:word_size].tolist(), "char": coef[word_size:word_size + char_size].tolist(),
                        "facts": coef[word_size + char_size:].tolist()},
            "intercept": float(pair.estimator.intercept_[0]),
            "platt": {"a": float(pair.calibrators[0].a_), "b": float(pair.calibrators[0].b_)},
            "thresholds": limits[target],
            "positives": int(y.sum()),
        }

    def vocabulary(vectorizer: CountVectorizer) -> list[str]:
        return [term for term, _ in sorted(vectorizer.vocabulary_.items(), key=lambda item: item[1])]

    artefact: dict[str, Any] = {
        "format": FORMAT,
        "version": "",
        "built_from": {"files": hashes, "examples": len(items), "settings": asdict(settings),
                       "libraries": {"scikit-learn": sklearn.__version__, "numpy": np.__version__,
                                     "scipy": scipy.__version__}},
        "features": {
            "word": {"ngram_range": list(settings.word_ngrams), "sublinear_tf": settings.sublinear_tf,
                     "vocabulary": vocabulary(features.word), "idf": features.word.idf_.tolist()},
            "char": {"ngram_range": list(settings.char_ngrams), "sublinear_tf": settings.sublinear_tf,
                     "vocabulary": vocabulary(features.char), "idf": features.char.idf_.tolist()},
            "facts": {"vocabulary": vocabulary(features.facts)},
        },
        "targets": targets,
    }
    artefact["version"] = artefact_version(artefact)
    return artefact, Fitted(features=features, models=models)


def rendered(artefact: dict[str, Any]) -> bytes:
    """The artefact's bytes on disk: sorted keys and no spaces, so equal content is equal bytes."""
    return (json.dumps(artefact, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


# The grid `--select` searches. Rule for choosing: the best mean average precision over the four targets; among
# points within 0.001 of it, the cheapest to score (fewer character n-grams per word, then the smaller C).
GRID = [
    replace(BuildSettings(), c=c, class_weight=weight, char_ngrams=chars)
    for chars in ((2, 5), (3, 5))
    for weight in ("balanced", None)
    for c in (4.0, 16.0, 64.0)
]


def select(directory: Path = DEFAULT_CORPORA_DIR) -> list[dict[str, Any]]:
    """Average precision per target, by batch-out cross-validation on training data, for each grid point."""
    items, _ = examples(directory)
    groups = [e.group for e in items]
    splits = list(_groups(items).split(items, groups=groups))
    rows = []
    for settings in GRID:
        scores: dict[str, np.ndarray] = {target: np.zeros(len(items)) for target in TARGETS}
        for train, test in splits:
            train_items, test_items = [items[i] for i in train], [items[i] for i in test]
            features = Features(settings, train_items)
            x_train, x_test = features.matrix(train_items), features.matrix(test_items)
            for target in TARGETS:
                y = np.array([e.labels[target] for e in train_items])
                scores[target][test] = _classifier(settings).fit(x_train, y).decision_function(x_test)
        precision = {target: round(float(average_precision_score([e.labels[target] for e in items],
                                                                   scores[target])), 4) for target in TARGETS}
        point = {"c": settings.c, "class_weight": settings.class_weight, "char_ngrams": settings.char_ngrams}
        rows.append({**point, **precision, "mean": round(sum(precision.values()) / len(precision), 4)})
    return rows


def run(corpora: Path, out: Path, *, seed: int | None, selecting: bool) -> int:
    """The command: print the selection table, or build and write the artefact and print what was built."""
    if not (corpora / "batches.yaml").is_file():
        print(f"cpi: no labelled corpora in {corpora} (pass --corpora DIR)", file=sys.stderr)
        return 2
    if selecting:
        for row in sorted(select(corpora), key=lambda r: -r["mean"]):
            print(json.dumps(row))
        return 0
    artefact, _ = build(corpora, replace(BuildSettings(), seed=seed) if seed is not None else None)
    out.write_bytes(rendered(artefact))
    summary = {"model_version": artefact["version"], "path": str(out), "examples": artefact["built_from"]["examples"],
               "thresholds": {t: artefact["targets"][t]["thresholds"] for t in TARGETS}}
    print(json.dumps(summary, indent=2))
    return 0
