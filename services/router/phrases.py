"""Many literal phrases as one compiled alternation, shaped as a trie, so a text is scanned once for all of them.

Python's regex engine tries the branches of an alternation one after another at every position of the text,
so a flat alternation of sixty cue phrases, each behind its own word-boundary lookbehind, costs sixty tries
per character. The same phrases as a trie ("no(?:t|ne|body|...)?") cost one try per character and one branch
per letter that matches. Measured (CPU time, this loaded machine): three of the router's cue lists searched
over 400 characters of the benchmark's text, 6.0-6.5 ms flat and 0.19-0.23 ms as a trie; the 1,098 lexicon
clues looked for in a main-corpus report, 654 us one `in` test each and 70 us in one scan. At one position the
longest phrase that matches is taken (a flat alternation takes the first listed).

Pure: stdlib only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

_END = ""  # the trie key of a phrase's end; its value is what must follow the phrase ("" for nothing)
_WORD_END = r"(?![\w])"
_SPACE = " "


def _trie_regex(phrases: Iterable[str], *, words: bool, word_end: str) -> str:
    """The alternation of `phrases` (lower-cased) as a trie. With `words`, a space stands for any run of white
    space and a phrase ending in a letter or digit must end a word (`word_end` says how)."""
    root: dict[str, Any] = {}
    for phrase in phrases:
        node = root
        for char in phrase.lower():
            node = node.setdefault(char, {})
        node[_END] = word_end if words and phrase[-1].isalnum() else ""

    def branch(node: dict[str, Any]) -> str:
        alternatives = [(r"\s+" if words and char == _SPACE else re.escape(char)) + branch(child)
                        for char, child in node.items() if char != _END]
        # The phrase ending here comes last: a longer phrase on the same letters wins.
        if _END in node:
            alternatives.append(node[_END])
        return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"

    return branch(root) if root else ""


def phrase_regex(phrases: Iterable[str], *, word_end: str = _WORD_END) -> str:
    """One regex for whole-word `phrases`, as the rules file writes cues: a phrase starting with a letter or digit
    starts a word, one ending with one ends a word (`word_end`), a space is any white space, and a leading `*`
    lets the phrase end a longer word ("*n't": wasn't, couldn't). Empty when there are no phrases."""
    phrases = list(dict.fromkeys(phrases))
    bounded = [phrase for phrase in phrases if not phrase.startswith("*") and phrase[0].isalnum()]
    endings = [phrase[1:] for phrase in phrases if phrase.startswith("*")]
    loose = [phrase for phrase in phrases if not phrase.startswith("*") and not phrase[0].isalnum()]
    parts = []
    if bounded or endings:
        # One word-start test for both: a phrase at the start of a word, or a word that ends in an ending.
        starts = [_trie_regex(bounded, words=True, word_end=word_end)] if bounded else []
        if endings:
            starts.append(r"\w*?" + _trie_regex(endings, words=True, word_end=word_end))
        parts.append(r"(?<![\w])" + (starts[0] if len(starts) == 1 else "(?:" + "|".join(starts) + ")"))
    if loose:
        parts.append(_trie_regex(loose, words=True, word_end=word_end))
    return "|".join(parts)


@lru_cache(maxsize=256)
def phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    """`phrase_regex(phrases)` compiled, ignoring case; None when there are no phrases."""
    return re.compile(phrase_regex(phrases), re.IGNORECASE) if phrases else None


class Substrings:
    """Which of many lower-case strings occur anywhere in a lower-case text (as `s in text`, all at once)."""

    def __init__(self, strings: Iterable[str]) -> None:
        self.strings = frozenset(strings)
        # At each position the trie gives the longest string that starts there; the shorter ones that start
        # there too are its prefixes, listed once here.
        self._prefixes = {string: tuple(other for other in self.strings if string.startswith(other))
                          for string in self.strings}
        body = _trie_regex(sorted(self.strings), words=False, word_end="")
        self._pattern = re.compile(f"(?=({body}))", re.DOTALL) if body else None

    def found_in(self, text: str) -> frozenset[str]:
        """The strings that occur in `text`."""
        if self._pattern is None:
            return frozenset()
        found: set[str] = set()
        for longest in set(self._pattern.findall(text)):
            found.update(self._prefixes[longest])
        return frozenset(found)
