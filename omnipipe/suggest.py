"""Closest-match suggestions for misspelled names."""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate most similar to ``word``, or None when nothing is close."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` — did you mean X?`` when a close candidate exists, else an empty string."""
    match = closest(word, candidates)
    return f" — did you mean {match}?" if match else ""
