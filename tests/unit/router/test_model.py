"""The router's second opinion: built reproducibly from training data only, scored in plain Python exactly as
scikit-learn scores it, stamped on decisions, and never changing what the rules decide."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import Decision, Outcome, Priority, Review
from services.common.errors import ConfigurationError
from services.router.corpora import batches, cases, intel_of, training_files
from services.router.domain import RoutingRules, assess, load_rules, model_inputs
from services.router.model import DEFAULT_MODEL_PATH, FORMAT, TARGETS, TextModel, artefact_version, load_model
from tests.unit.router.test_domain import make_intel

pytest.importorskip("sklearn", reason="building the model needs the `model` extra")
from services.router import build_model  # after the skip: it imports scikit-learn

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def rules() -> RoutingRules:
    return load_rules()


@pytest.fixture(scope="module")
def built() -> tuple[dict[str, Any], build_model.Fitted]:
    return build_model.build(HERE)


@pytest.fixture(scope="module")
def shipped() -> TextModel:
    return load_model()


def test_trained_on_training_data_only(built: tuple[dict[str, Any], build_model.Fitted]) -> None:
    """The model reads the main corpus and the batches that are training data, and never a held-out batch."""
    artefact, _ = built
    held_out = {batch.file for batch in batches(HERE) if batch.held_out}
    assert held_out, "there are held-out batches to keep out"
    assert list(artefact["built_from"]["files"]) == training_files(HERE)
    assert held_out.isdisjoint(artefact["built_from"]["files"])
    assert artefact["built_from"]["examples"] == sum(len(cases(HERE / name)) for name in training_files(HERE))


def test_a_batch_marked_held_out_leaves_the_training_set(tmp_path: Path) -> None:
    """Marking a batch held out (tuned_since null) is enough to take it out of what the model learns from."""
    for path in HERE.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    listed = (tmp_path / "batches.yaml").read_text(encoding="utf-8")
    (tmp_path / "batches.yaml").write_text(
        listed.replace('tuned_since: "2026.11.3"', "tuned_since: null"), encoding="utf-8")  # heldout_2 alone
    assert "heldout_2.yaml" in training_files(HERE)
    assert "heldout_2.yaml" not in training_files(tmp_path)


def test_shipped_artefact_is_a_rebuild_byte_for_byte(built: tuple[dict[str, Any], build_model.Fitted]) -> None:
    """Same corpora, settings, seed and libraries give byte-identical bytes: the shipped model.json is exactly
    what `cpi build-model` builds from the corpora in the repository now (rebuild it after changing them)."""
    artefact, _ = built
    recorded = json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))["built_from"]["libraries"]
    if recorded != artefact["built_from"]["libraries"]:
        pytest.skip(f"built with {recorded}, these are {artefact['built_from']['libraries']}")
    # Compared by digest: a byte-for-byte diff of a megabyte artefact is unreadable, and pytest (9.2, with CI set,
    # so untruncated) crashed rendering it instead of reporting the failure.
    rebuilt = hashlib.sha256(build_model.rendered(artefact)).hexdigest()
    shipped = hashlib.sha256(DEFAULT_MODEL_PATH.read_bytes()).hexdigest()
    assert rebuilt == shipped, f"model.json is stale (rebuilt as {artefact['version']}): run `cpi build-model`"


def test_plain_python_scorer_equals_scikit_learn(built: tuple[dict[str, Any], build_model.Fitted],
                                                 rules: RoutingRules) -> None:
    """For training reports and invented ones (unknown words, accents, one-letter words, long words, empty
    descriptions), the router's scorer gives scikit-learn's calibrated probabilities to within 1e-9."""
    artefact, fitted = built
    model = TextModel(artefact)
    training = [intel_of(number, case) for number, case in enumerate(cases(HERE / "corpus.yaml"))]
    invented = [make_intel(information=text) for text in (
        "x", "Qwertyuiopasdfghjkl zxcvbnm!!", "Café owner José said the lads   were\tselling\nweed again.",
        "A 14-year-old girl, I think, with an older 'boyfriend' (22?) and £200 in cash; new iPhone.",
        "Nothing of concern. We checked and the knife was a plastic toy.")]
    examples = []
    for intel in [*training, *invented]:
        text, facts = model_inputs(intel)
        examples.append(build_model.Example(text=text, facts=" ".join(facts), labels={}, group=""))
    matrix = fitted.features.matrix(examples)
    expected = {target: fitted.models[target].predict_proba(matrix)[:, 1] for target in TARGETS}
    for row, example in enumerate(examples):
        got = model.probabilities(example.text, example.facts.split())
        for target in TARGETS:
            assert got[target] == pytest.approx(float(expected[target][row]), abs=1e-9), (row, target)


def test_altered_artefact_is_refused(tmp_path: Path) -> None:
    """An artefact whose content no longer matches its version stamp (edited by hand, truncated) stops start-up."""
    artefact = json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    artefact["targets"]["high"]["intercept"] += 1.0
    path = tmp_path / "model.json"
    path.write_text(json.dumps(artefact), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="version does not match"):
        load_model(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_model(path)


def test_build_command_needs_the_corpora(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`cpi build-model` pointed at a directory without the labelled corpora says so and writes nothing."""
    out = tmp_path / "model.json"
    assert build_model.run(tmp_path, out, seed=None, selecting=False) == 2
    assert "no labelled corpora" in capsys.readouterr().err
    assert not out.exists()


# ----------------------------------------------------------------------------- on decisions


def tiny_model(word: str, weights: dict[str, float], thresholds: tuple[float, float] = (0.9, 0.1)) -> TextModel:
    """A one-word model: with `word` in the text each target's probability is sigmoid(weight - weight / 2),
    without it sigmoid(-weight / 2); a weight of 0 gives 0.5, neutral between the thresholds."""
    artefact: dict[str, Any] = {
        "format": FORMAT, "version": "",
        "features": {"word": {"ngram_range": [1, 1], "vocabulary": [word], "idf": [1.0]},
                     "char": {"ngram_range": [3, 3], "vocabulary": [], "idf": []},
                     "facts": {"vocabulary": []}},
        "targets": {target: {"weights": {"word": [weights.get(target, 0.0)], "char": [], "facts": []},
                             "intercept": -weights.get(target, 0.0) / 2, "platt": {"a": -1.0, "b": 0.0},
                             "thresholds": {"raise_at": thresholds[0], "lower_at": thresholds[1]}}
                    for target in TARGETS},
    }
    artefact["version"] = artefact_version(artefact)
    return TextModel(artefact)


def codes(decision: Decision) -> list[str]:
    assert decision.review is not None
    return [reason.code for reason in decision.review.reasons]


def test_model_never_changes_what_the_rules_decide(rules: RoutingRules, shipped: TextModel) -> None:
    """Across the main corpus, a decision with the second opinion has the same outcomes, priority, grading,
    THRIVE and rationale (still naming the rules) as without it; it only adds the model version and review."""
    for number, case in enumerate(cases(HERE / "corpus.yaml")):
        intel = intel_of(number, case)
        alone, seconded = assess(intel, rules), assess(intel, rules, model=shipped)
        assert seconded.model_version == shipped.version and seconded.review is not None
        assert alone.model_version is None and alone.review is None
        assert seconded.model_dump(exclude={"decision_id", "model_version", "review"}) == alone.model_dump(
            exclude={"decision_id", "model_version", "review"})


def test_decision_is_deterministic_for_rules_and_model_versions(rules: RoutingRules, shipped: TextModel) -> None:
    """The same intel, rules and model give the same decision, id included; another model version, or none,
    gives another id (as another rules version does)."""
    intel = make_intel(information="He keeps a machete under the seat of his car and showed it to the lads.")
    first, again = assess(intel, rules, model=shipped), assess(intel, rules, model=shipped)
    assert first == again
    other = tiny_model("machete", {"high": 4.0})
    ids = {first.decision_id, assess(intel, rules).decision_id, assess(intel, rules, model=other).decision_id}
    assert len(ids) == 3
    assert assess(intel, rules.model_copy(update={"version": "other"}), model=shipped).decision_id not in ids


def test_model_disagreeing_on_an_outcome_raises_review(rules: RoutingRules) -> None:
    """Where the rules do not send a report to the crime desk but the model is confident it belongs there,
    review is needed with a code and a sentence; where the model agrees with the rules, it is not."""
    model = tiny_model("gardening", {"crime_desk": 12.0})
    quiet = assess(make_intel(information="He enjoys gardening at the allotment on Sundays."), rules, model=model)
    assert Outcome.CRIME_DESK not in quiet.outcomes
    assert codes(quiet) == ["model_suggests_crime_desk"]
    assert quiet.review is not None and quiet.review.needed
    assert "crime desk a 100% chance" in quiet.review.reasons[0].reason
    calm = assess(make_intel(information="He waters the plants for the neighbours."), rules, model=model)
    assert calm.review == Review(needed=False, reasons=[], scores=calm.review.scores if calm.review else {})


def test_model_doubting_the_rules_raises_review(rules: RoutingRules) -> None:
    """Where the rules give an outcome and high priority on words in the text but the model finds neither
    likely, review is needed; the rules' outcome and priority stand."""
    model = tiny_model("stabbed", {"crime_desk": -12.0, "high": -12.0})
    decision = assess(make_intel(information="Her brother was stabbed in the leg outside the chip shop."), rules,
                      model=model)
    assert Outcome.CRIME_DESK in decision.outcomes and decision.priority is Priority.HIGH
    assert {"model_doubts_crime_desk", "model_doubts_high"} <= set(codes(decision))
    assert "rules_evidence_thin" not in codes(decision)


def test_model_suggesting_high_priority_raises_review(rules: RoutingRules) -> None:
    """Under-triage is the costly error: where the rules give less than high and the model gives high a
    probability past its threshold, review is needed."""
    model = tiny_model("tablets", {"high": 12.0})
    decision = assess(make_intel(information="Her friend gives her tablets at weekends."), rules, model=model)
    assert decision.priority is not Priority.HIGH
    assert "model_suggests_high" in codes(decision)


def test_thin_evidence_raises_review(rules: RoutingRules) -> None:
    """An outcome resting on the form alone (a ticked category and a named person of concern, no words of the
    text matched) needs review even when the model agrees; the same report with words that show the offence
    does not."""
    model = tiny_model("zzz", {})
    thin = assess(make_intel(categories=["drug_related_harm"], subjects=[{"role": "person_of_concern",
                                                                            "name": "Sam Jones"}],
                             information="Sam came in to drop off a form and was polite."), rules, model=model)
    assert Outcome.CRIME_DESK in thin.outcomes
    assert codes(thin) == ["rules_evidence_thin"]
    firm = assess(make_intel(categories=["drug_related_harm"], subjects=[{"role": "person_of_concern",
                                                                            "name": "Sam Jones"}],
                             information="Sam is selling cocaine from his flat most evenings."), rules, model=model)
    assert Outcome.CRIME_DESK in firm.outcomes
    assert "rules_evidence_thin" not in codes(firm)


def test_review_needs_reasons() -> None:
    """The contract: a review is needed exactly when it gives reasons."""
    with pytest.raises(ValidationError, match="exactly when"):
        Review(needed=True, reasons=[])
    with pytest.raises(ValidationError, match="exactly when"):
        Review.model_validate({"needed": False, "reasons": [{"code": "x", "reason": "y"}]})


def test_decisions_without_a_second_opinion_still_validate(rules: RoutingRules) -> None:
    """v1 stays backward compatible: a decision published before model_version and review existed reads."""
    body = json.loads(assess(make_intel(), rules).model_dump_json())
    for added in ("model_version", "review"):
        body.pop(added)
    decision = Decision.model_validate(body)
    assert decision.model_version is None and decision.review is None
