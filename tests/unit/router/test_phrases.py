"""One trie-shaped alternation for many phrases (services/router/phrases.py): the same finds as one test per
phrase."""

from __future__ import annotations

import pytest

from services.router.phrases import Substrings, phrase_pattern

CUES = ("no", "not", "no one", "none", "never", "*n't", "no evidence", "a&e", ",")


@pytest.mark.parametrize(("text", "found"), [
    ("There was no knife.", ["no"]),
    ("She had not been seen.", ["not"]),
    ("No  one saw it.", ["No  one"]),  # any white space between a phrase's words; the longest phrase wins
    ("He wasn't there and couldn't say.", ["wasn't", "couldn't"]),  # a leading * ends a longer word
    ("Nothing, nobody, notable, snow.", [","] * 3),  # inside a longer word a phrase is not found
    ("Taken to A&E, never seen.", ["A&E", ",", "never"]),
    ("none found", ["none"]),
])
def test_phrases_are_found_as_whole_words(text: str, found: list[str]) -> None:
    """Each phrase is found only as whole words, ignoring case, with the longest phrase at a place taken."""
    pattern = phrase_pattern(CUES)
    assert pattern is not None
    assert [match.group(0) for match in pattern.finditer(text)] == found


def test_a_phrase_is_found_wherever_one_test_per_phrase_finds_it() -> None:
    """For every phrase and text, the trie finds something exactly when a test of that phrase alone does."""
    texts = ["no", "not yet", "didn't", "n't", "a&e.", "nobody, no evidence", "No one", "anything", ""]
    for cue in CUES:
        alone = phrase_pattern((cue,))
        every = phrase_pattern(CUES)
        assert alone is not None and every is not None
        for text in texts:
            if alone.search(text):
                assert every.search(text), (cue, text)


def test_no_phrases_is_no_pattern() -> None:
    """An empty cue list gives no pattern (nothing is ever found), rather than one that matches everywhere."""
    assert phrase_pattern(()) is None


def test_substrings_are_found_anywhere_overlapping_and_nested() -> None:
    """Every string that occurs, as `s in text` says: inside words, overlapping, and one inside another."""
    strings = ["stab", "stabb", "abbed", "knif", "gun", "a.b"]
    text = "he stabbed her; gunfire; a.b"
    assert Substrings(strings).found_in(text) == {s for s in strings if s in text}
    assert Substrings(strings).found_in("nothing here") == frozenset()
    assert Substrings([]).found_in("anything") == frozenset()
    assert Substrings(["a.b"]).found_in("axb") == frozenset()
