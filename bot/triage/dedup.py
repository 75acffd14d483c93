"""Story fingerprints: recognise the same story posted in several channels.

A bottom-k sketch of word 5-gram shingles: the k smallest shingle hashes. Two posts that share
at least `min_shared` of their sketch hashes overlap heavily (a bottom-k sketch estimates the
Jaccard similarity of the shingle sets), so a repost with a different intro line or channel
signature still matches, while two posts that only share a slogan do not. Short posts, which
have too few shingles for a sketch, are fingerprinted by their whole normalised word sequence.
Forwards are recognised by their forward header, not by text.
"""

from __future__ import annotations

from collections.abc import Sequence
from hashlib import blake2b

SHINGLE = 5
SKETCH = 4
MIN_WORDS_FOR_SKETCH = 12
MIN_SHARED = 2


def _h(text: str) -> str:
    return blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def story_fingerprints(words: Sequence[str]) -> tuple[str, ...]:
    """Fingerprints of a post from its normalised word tokens (empty if too little text)."""
    kept = [w for w in words if len(w) > 2]
    if len(kept) < 4:
        return ()
    if len(kept) < MIN_WORDS_FOR_SKETCH:
        return ("w" + _h(" ".join(kept)),)
    shingles = {" ".join(kept[i : i + SHINGLE]) for i in range(len(kept) - SHINGLE + 1)}
    return tuple("s" + h for h in sorted(_h(s) for s in shingles)[:SKETCH])


def required_overlap(fingerprints: Sequence[str]) -> int:
    """How many fingerprints must point to one earlier post to call this one a copy of it."""
    return 1 if len(fingerprints) == 1 else MIN_SHARED
