"""Language identification of posts: ISO 639-1 code and confidence.

The default backend is py3langid 0.4.0 (a naive-Bayes byte n-gram model over 140 labels, which
include every target language of SPEC §4: Uzbek, Tajik, Kyrgyz, Kazakh, Azerbaijani, Armenian,
Georgian, and the confusable neighbours Tatar, Bashkir, Turkmen, Macedonian, Mongolian, Uyghur,
Kurdish). Its label set is NOT restricted to the targets: a language outside the list keeps its
own code. langdetect 1.0.9 (seeded, so deterministic) stays selectable; it has no label for
nine of the targets.

Before detection, URLs, @mentions, '#' signs, emoji and other pictographs are removed; text
without a single letter is ``LanguageGuess("und", 0.0)``. Labels are mapped to ISO 639-1: Bosnian
and Croatian are Serbian here (``bs``/``hr`` → ``sr``, one language in two scripts for our
analysts), Egyptian and Moroccan Arabic → ``ar``, Southern Uzbek → ``uz``, Southern Kurdish →
``ku``; the confidence of a mapped label is the summed probability of the labels it absorbs.
The model is loaded once per process, on first use.

A post's language is decided on its first `DETECT_CHARS` characters of cleaned text: detection
costs time in proportion to length, and a sentence or two decides it.

One-liners (under `ONE_LINER_CHARS` of cleaned text) get a second look: a language far from the
region (Nigerian Pidgin, Malagasy, Occitan …) must be 100x likelier than a target language or a
regional neighbour to win, and `one_liner_correction` settles the pairs py3langid mixes up on a
few words (Kazakh/Kyrgyz, Russian/Bulgarian/Ukrainian, Serbian/Macedonian, Tajik/Uzbek,
Azerbaijani/Turkish, English for a French or Turkish line of names) by letters, function words
and endings each language writes and its neighbour does not. On bench/langid.py this takes the
20-40-character snippets from 0.973 to 0.992 and out-of-list languages labelled as a target
from 1.25 % to 0.13 % (40-80 characters). lingua-language-detector was measured as the second
opinion instead and not taken: it has no Uzbek, Tajik or Kyrgyz; restricted to the other
targets it scores 0.78 (low-accuracy mode, +34 MB) or 0.81 (high, +497 MB: over the whole
service's 300 MB budget) on the 20-40-character snippets, below py3langid alone.

py3langid is run through `Py3langidModel`, which reads py3langid's own model file and gives
the same answers as ``LanguageIdentifier(norm_probs=True)`` about 4x faster and in less memory:
the byte n-gram automaton is walked for all positions at once with numpy (see
`Py3langidModel.features`), and the float16 weight table — which numpy can only multiply in
slow software emulation — is held as int16 fixed point, exact for this model's weights, and
sparse: each column's floor (a language's smoothing value, 81.5 % of the entries) and the
entries above it. The model keeps 29 MB (its transition table in 2 bytes an entry, not 4; the
weights in 8 MB, not 28) and the model file's arrays are read a slice at a time, never whole.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import IO, TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:  # numpy is loaded with the model, not at import
    import numpy as np
    import numpy.typing as npt

from bot.triage.normalise import fold_lookalikes

__all__ = [
    "DETECT_CHARS",
    "TARGET_LANGUAGES",
    "LangdetectDetector",
    "LanguageDetector",
    "LanguageGuess",
    "Py3langidDetector",
    "Py3langidModel",
    "UnknownDetectorError",
    "clean_for_detection",
    "make_detector",
]

logger = logging.getLogger(__name__)

TARGET_LANGUAGES: frozenset[str] = frozenset(
    {
        *("ru", "uk", "be", "en", "az", "tr", "kk", "hy", "ka"),
        *("uz", "tg", "ky", "bg", "sr", "fa", "ar", "de", "fr"),
    }
)
UNDETERMINED = "und"
# Languages outside the list that the region's channels do write, or that its languages are
# confused with: on a one-liner they keep their full weight (see `Py3langidDetector`), so
# that they keep their own code rather than becoming a listed neighbour.
REGIONAL_NEIGHBOURS: frozenset[str] = frozenset(
    {
        *("mk", "tt", "ba", "tk", "mn", "ug", "ku", "crh", "he", "el", "pl", "ro", "zh"),
        *("ja", "ko", "hi", "ur", "ps", "lt", "lv", "et", "und"),
    }
)

# Model labels → the code Vigil reports (ISO 639-1 where the label has a macrolanguage there).
_LABEL_TO_CODE = {
    "bs": "sr",
    "hr": "sr",
    "arz": "ar",
    "ary": "ar",
    "uzs": "uz",
    "sdh": "ku",
    "wuu": "zh",
    "yue": "zh",
    "gug": "gn",
    "fuv": "ff",
    "ltg": "lv",
    "zxx": UNDETERMINED,  # py3langid's "no linguistic content"
    "zh-cn": "zh",  # langdetect
    "zh-tw": "zh",
}
# The language of a post is decided on its first 200 characters of text (after URLs, mentions
# and emoji are set aside): detection costs time in proportion to length, and a sentence or two
# decides it. On the 6,000 NTREX posts (22 languages) of bench/triage.py, the first 200
# characters give the same language as the whole post every time (150 too; 120 does not).
DETECT_CHARS = 200
# Cleaning looks this far into a post for its first DETECT_CHARS characters of text.
_SCAN_CHARS = 10 * DETECT_CHARS

# Emoji, pictographs, dingbats, arrows, regional indicators, keycaps, ZWJ and variation
# selectors, and the '#' of hashtags (the hashtag's word stays: it is language).
_NOISE_CLASS = "#\u2190-\u2bff\u20e3\u200d\ufe0e\ufe0f\U0001f000-\U0001faff\U000e0000-\U000e007f"
_NOISE_RE = re.compile(
    r"(?:https?://|www\.|(?:t|telegram)\.me/|tg://)\S*|(?<!\w)@\w+|[" + _NOISE_CLASS + "]+",
    re.IGNORECASE,
)
# Most posts have none of these: the (slow) substitution above is skipped for them.
_NOISE_HINT_RE = re.compile("[@/" + _NOISE_CLASS + "]")
_LETTER_RE = re.compile(r"[^\W\d_]")
_SPACES_RE = re.compile(r"\s{2,}")


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    code: str  # ISO 639-1 ('und' when no letters)
    confidence: float


class LanguageDetector(Protocol):
    def detect(self, text: str) -> LanguageGuess: ...


class UnknownDetectorError(ValueError):
    """A language detector name that is neither 'py3langid' nor 'langdetect'."""


def clean_for_detection(text: str) -> str:
    """The text a detector sees: no URLs, mentions, emoji or '#', look-alike letters inside
    words of another script folded (Стaлнo with Latin a and o); at most DETECT_CHARS."""
    text = text[:_SCAN_CHARS]
    if _NOISE_HINT_RE.search(text) is not None or "www." in text.lower():
        text = _SPACES_RE.sub(" ", _NOISE_RE.sub(" ", text))
    return fold_lookalikes(text.strip()[:DETECT_CHARS])


def _code(label: str) -> str:
    return _LABEL_TO_CODE.get(label, label)


_ROW = 256  # one automaton row per byte value
# Padding before the text: byte 0xFF never occurs in UTF-8, so it leads every state to the root.
_PAD_BYTE = 0xFF
# Slices of the model converted at a time at load (they bound the memory it takes).
_SLICE_ROWS = 4096
_BFS_STATES = 512
# The arrays of py3langid's model file that the model here reads.
_ARRAYS = ("ptc", "pc", "classes", "nextmove", "nextmove_row", "out_feat")
_BLOCK_MAX = 1 << 16  # the states of one byte block, numbered in an entry's 16 bits


class Py3langidModel:
    """py3langid 0.4.0's naive-Bayes model, scored with normalised probabilities.

    Gives what ``py3langid.langid.LanguageIdentifier(norm_probs=True)`` gives (the same
    features and weights; the same sums, to float32 rounding), faster and smaller:

    * Features: py3langid walks a byte automaton (Aho-Corasick over the model's byte n-grams)
      one byte at a time in Python. Its states stand for strings of at most `depth` bytes, so
      the state after any byte depends only on the last `depth` bytes, whatever came before.
      Each position's state is therefore found by `depth` vectorised steps over all positions
      at once, each position starting anywhere (here: from the root after 0xFF padding).
    * Weights: the model ships float16 log-probabilities; numpy multiplies float16 in software
      (~0.1 s per 1,000 posts). They are held as int16 fixed point, exact when every weight
      is a multiple of 2**-scale_bits — checked at load — and sparse (`_SparseWeights`:
      8 MB, where the dense int16 table took 28; a post's scores cost ~30 µs more).
    * Memory: the transition table takes 2 bytes an entry (19 MB, not 37: see `_Transitions`),
      and the model file's arrays are read a slice at a time into what they are converted to,
      never whole: the model keeps 29 MB, and loading adds 41 MB to a fresh interpreter's
      resident set (64 with the dense table; reading the arrays whole took 30 MB more).
    """

    def __init__(self) -> None:
        import numpy as np

        with _py3langid_npz() as archive:
            classes = _whole(archive, "classes")
            self._prior = _whole(archive, "pc").astype(np.float32)
            by_state_row = _whole(archive, "nextmove_row")
            by_state_output = _whole(archive, "out_feat")
            table = _Transitions(archive, len(by_state_row))
            self._weights = _fixed_point(archive, "ptc")
        # A label per column of the weights; py3langid has two columns (two scripts) for sr, uz.
        self.columns: tuple[str, ...] = tuple(str(c) for c in classes)
        first_column: dict[str, int] = {}
        aliases = []
        for i, label in enumerate(self.columns):
            if label in first_column:
                aliases.append((first_column[label], i))
            else:
                first_column[label] = i
        self._aliases = tuple(aliases)
        self._table = table
        self._next = table.next_states
        # Per state, in the table's numbering: its row's first entry, and its feature (-1: none).
        self._rowbase = by_state_row[table.old_state].astype(np.intp) * _ROW
        self._outputs = by_state_output[table.old_state].astype(np.int32)
        self.depth = _automaton_depth(self._next, self._rowbase)
        self._pad = bytes([_PAD_BYTE]) * (self.depth - 1)
        # (each block starts with a copy of the root)
        if np.any(self._next(self._rowbase + _PAD_BYTE) != table.block_start[_PAD_BYTE]):
            raise ValueError("py3langid model: byte 0xFF does not lead back to the root")

    @staticmethod
    def encode(text: str) -> bytes:
        """The bytes py3langid scores (its own `_encode` of a str)."""
        if text.isupper():
            text = text.lower()
        return unicodedata.normalize("NFC", text).encode("utf8", errors="surrogatepass")

    def features(self, data: bytes) -> npt.NDArray[np.int32]:
        """The model's feature of each byte position of `data` (-1: none), in order."""
        import numpy as np

        n = len(data)
        padded = np.frombuffer(self._pad + data, dtype=np.uint8)
        block = self._table.block_start[padded]
        step = self._table.step
        rowbase = self._rowbase
        # The first step may start in any state (0xFF leads every one to the root): row 0's.
        states = step(padded[:n], block[:n])
        for k in range(1, self.depth):
            states = step(rowbase[states] + padded[k : k + n], block[k : k + n])
        found: npt.NDArray[np.int32] = self._outputs[states]
        return found

    def probabilities(self, text: str) -> npt.NDArray[np.float32]:
        """Probability of each column of `columns` for `text`; they sum to 1.

        A label with two columns (two scripts) has its summed probability in its first column
        and 0 in the other, as in py3langid.
        """
        import numpy as np

        data = self.encode(text)
        found = self.features(data)
        found = found[found >= 0]
        if not found.size:
            return np.full(len(self._prior), 1.0 / len(self._prior), dtype=np.float32)
        shrink = np.float32(1.0 / math.sqrt(len(data)))
        feature, count = np.unique(found, return_counts=True)
        weight = np.log1p(count.astype(np.float32))
        weight *= self._weights.unscale * shrink
        scores = self._weights.scores(feature, weight)
        scores += self._prior * shrink
        scores -= scores.max()
        np.exp(scores, out=scores)
        scores /= scores.sum()
        for first, other in self._aliases:
            scores[first] += scores[other]
            scores[other] = 0.0
        return scores


@contextmanager
def _py3langid_npz() -> Iterator[zipfile.ZipFile]:
    """py3langid's model file (npz inside LZMA) unpacked to a temporary file, as a zip archive
    of .npy members read here a slice at a time (py3langid's own modelio reads every array
    whole and copies the automaton into Python arrays and lists: ~50 MB more)."""
    import lzma
    import shutil
    import tempfile

    from py3langid.langid import MODEL_DIR, MODEL_FILE

    with tempfile.TemporaryFile(suffix=".npz") as unpacked:
        with lzma.open(MODEL_DIR / MODEL_FILE) as packed:
            shutil.copyfileobj(packed, unpacked, length=1 << 20)
        unpacked.seek(0)
        with zipfile.ZipFile(unpacked) as archive:
            missing = set(_MEMBERS).difference(archive.namelist())
            if missing:
                raise ValueError(f"py3langid model without {sorted(missing)}")
            yield archive


_MEMBERS = tuple(f"{name}.npy" for name in _ARRAYS)


def _whole(archive: zipfile.ZipFile, name: str) -> npt.NDArray[Any]:
    """A small array of the model, whole."""
    import numpy as np

    with archive.open(f"{name}.npy") as stream:
        array: npt.NDArray[Any] = np.lib.format.read_array(stream, allow_pickle=False)
    return array


def _header(stream: IO[bytes], name: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """(shape, dtype) from the .npy header of the member `name`; a plain C-order array only."""
    import numpy as np

    fmt = np.lib.format
    version = fmt.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = fmt.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran_order, dtype = fmt.read_array_header_2_0(stream)
    else:
        raise ValueError(f"py3langid model: {name} in .npy format {version}")
    if fortran_order or dtype.hasobject or not shape:
        raise ValueError(f"py3langid model: {name} is not a plain array")
    return tuple(shape), dtype


def _member_header(archive: zipfile.ZipFile, name: str) -> tuple[tuple[int, ...], np.dtype[Any]]:
    with archive.open(f"{name}.npy") as stream:
        return _header(stream, name)


def _slices(
    archive: zipfile.ZipFile, name: str, rows: int
) -> Iterator[tuple[int, npt.NDArray[Any]]]:
    """(first row, rows) of a big array of the model, `rows` rows at a time: the array is
    never whole in memory, only what it is converted to."""
    import numpy as np

    with archive.open(f"{name}.npy") as stream:
        shape, dtype = _header(stream, name)
        row_bytes = math.prod(shape[1:]) * dtype.itemsize
        for start in range(0, shape[0], rows):
            count = min(rows, shape[0] - start)
            data = stream.read(count * row_bytes)
            if len(data) != count * row_bytes:
                raise ValueError(f"py3langid model: {name} is cut short")
            yield start, np.frombuffer(data, dtype=dtype).reshape((count, *shape[1:]))


class _Transitions:
    """The automaton's transition table (a target state per entry, 256 entries a row) in
    2 bytes an entry instead of py3langid's 4: 19 MB instead of 37, at the cost of one
    addition a step.

    The model has 104,583 states, more than 16 bits number; but a state stands for a string,
    and a transition on byte b leads to the longest suffix ending in b that is a state, or to
    the root. So the targets in column b are the states whose string ends in b (at most
    11,012 for any byte), plus the root. States are renumbered in blocks by that last byte,
    each block led by a copy of the root (the same row, no feature), and an entry holds its
    target's place in its column's block: target = `block_start[b]` + entry. The numbering
    is private: `old_state` maps it back to py3langid's, for the per-state arrays. A model
    file whose table breaks the property (a state in two columns) is refused at load.
    """

    def __init__(self, archive: zipfile.ZipFile, states: int) -> None:
        import numpy as np

        # Each state's last byte: the one column it appears in (the root's is -1).
        last_byte = np.full(states, -1, dtype=np.int16)
        for _start, part in _slices(archive, "nextmove", _SLICE_ROWS * _ROW):
            for byte, column in enumerate(part.reshape(-1, _ROW).T):
                targets = column[column != 0]
                before = last_byte[targets]
                if np.any((before != -1) & (before != byte)):
                    raise ValueError("py3langid model: a state is reached on two bytes")
                last_byte[targets] = byte
        if np.any(last_byte[1:] < 0):
            raise ValueError("py3langid model: a state no transition leads to")
        # Blocks in byte order, each a root copy then its states in py3langid's order.
        sizes = np.bincount(last_byte[1:], minlength=_ROW) + 1
        if sizes.max() > _BLOCK_MAX:
            raise ValueError("py3langid model: too many states end in one byte")
        self.block_start = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int32)
        by_block = np.argsort(last_byte[1:], kind="stable") + 1
        self.old_state = np.insert(by_block, self.block_start - np.arange(_ROW), 0)
        renumbered = np.empty(states, dtype=np.int32)
        renumbered[self.old_state] = np.arange(len(self.old_state), dtype=np.int32)
        self._table = np.empty(_member_header(archive, "nextmove")[0], dtype=np.uint16)
        for start, part in _slices(archive, "nextmove", _SLICE_ROWS * _ROW):
            rows = part.reshape(-1, _ROW)
            place = renumbered[rows] - self.block_start  # the root: its copy, place 0
            place[rows == 0] = 0
            self._table[start : start + len(part)] = place.ravel()

    def step(self, at: npt.NDArray[Any], block: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
        """The states the entries `at` lead to, `block` the start of each one's byte block."""
        states: npt.NDArray[np.int32] = self._table[at] + block
        return states

    def next_states(self, at: npt.NDArray[Any]) -> npt.NDArray[np.int32]:
        """The state each table entry `at` leads to (in this table's numbering)."""
        return self.step(at, self.block_start[at & (_ROW - 1)])


@dataclass(frozen=True, slots=True)
class _SparseWeights:
    """The model's weight table (features × columns) in int16 fixed-point units, stored as
    each column's floor plus the entries above it, row by row (CSR).

    A naive-Bayes weight is a smoothed log-probability: a feature never seen in a language's
    training text has that language's one smoothing value, the column's minimum. 81.5 % of
    py3langid's 14.2 million entries are that minimum; the others take 3 bytes here (an 8-bit
    column, a 16-bit height above the floor), 8 MB for the table instead of 28.
    """

    floor: npt.NDArray[np.float32]  # per column, in fixed-point units
    starts: npt.NDArray[np.int32]  # per feature, its first entry; one more at the end
    columns: npt.NDArray[np.uint8]
    heights: npt.NDArray[np.uint16]  # above the column's floor, in fixed-point units
    unscale: np.float32  # one fixed-point unit

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.floor, self.starts, self.columns, self.heights))

    def scores(
        self, feature: npt.NDArray[Any], weight: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """``weight @ table[feature]`` in fixed-point units (float32, as the dense product
        gives it to rounding): the floor times the summed weight, plus the entries above it."""
        import numpy as np

        first = self.starts[feature]
        counts = self.starts[feature + 1] - first
        total = int(counts.sum())
        # Each selected entry's place: its row's first entry plus its rank within the row.
        offsets = np.repeat(first - (np.cumsum(counts) - counts), counts)
        at = offsets + np.arange(total, dtype=offsets.dtype)
        above = np.bincount(
            self.columns[at],
            weights=self.heights[at] * np.repeat(weight, counts),
            minlength=len(self.floor),
        )
        result: npt.NDArray[np.float32] = above.astype(np.float32)
        result += np.float32(weight.sum(dtype=np.float64)) * self.floor
        return result


def _fixed_point(archive: zipfile.ZipFile, name: str) -> _SparseWeights:
    """The float16 table `name` as int16 times a power-of-two unit, kept sparse (see
    `_SparseWeights`), converted a slice at a time (the float16 table is never whole in
    memory, nor the dense int16 one)."""
    import numpy as np

    shape, dtype = _member_header(archive, name)
    if len(shape) != 2 or dtype != np.float16:
        raise ValueError(f"py3langid model: {name} is not a float16 table")
    if shape[1] > 256:
        raise ValueError(f"py3langid model: {name} has more than 256 columns")
    # The largest magnitude, from the bits: a float16's magnitude orders as its low 15 bits
    # (numpy's float16 arithmetic, min and max included, is slow software emulation); and
    # each column's minimum, in float32.
    magnitude = 0
    lowest = np.full(shape[1], np.inf, dtype=np.float32)
    for _start, part in _slices(archive, name, _SLICE_ROWS):
        magnitude = max(magnitude, int((part.view(np.uint16) & 0x7FFF).max()))
        np.minimum(lowest, part.astype(np.float32).min(axis=0), out=lowest)
    if magnitude >= 0x7C00:
        raise ValueError(f"py3langid model: {name} has an infinite or NaN weight")
    largest = float(np.array(magnitude, dtype=np.uint16).view(np.float16))
    scale = 2.0 ** math.floor(math.log2(32767 / (largest or 1.0)))
    floor = np.rint(lowest * np.float32(scale)).astype(np.int32)

    def heights() -> Iterator[tuple[int, npt.NDArray[np.int32], bool]]:
        for start, part in _slices(archive, name, _SLICE_ROWS):
            scaled = part.astype(np.float32) * np.float32(scale)
            fixed = np.rint(scaled).astype(np.int32)
            exact = bool(np.array_equal(fixed, scaled))
            fixed -= floor
            yield start, fixed, exact

    # Two more passes, counting then filling arrays of their final size: kept slices would
    # leave the heap fragmented (15 MB more resident for good).
    starts = np.zeros(shape[0] + 1, dtype=np.int32)
    exact = True
    for start, fixed, exact_here in heights():
        starts[start + 1 : start + len(fixed) + 1] = np.count_nonzero(fixed, axis=1)
        exact = exact and exact_here
    if not exact:  # another model file: still a close approximation (error < 2**-16 of range)
        logger.warning("py3langid weights rounded to int16 (unit %s)", 1.0 / scale)
    np.cumsum(starts, out=starts)
    columns = np.empty(int(starts[-1]), dtype=np.uint8)
    above = np.empty(int(starts[-1]), dtype=np.uint16)
    for start, fixed, _exact in heights():
        rows, cols = np.nonzero(fixed)  # row by row: the order of `starts`
        at = slice(int(starts[start]), int(starts[start + len(fixed)]))
        columns[at] = cols
        above[at] = fixed[rows, cols]
    unit = np.float32(1.0 / scale)
    return _SparseWeights(floor.astype(np.float32), starts, columns, above, unit)


def _automaton_depth(
    next_states: Callable[[npt.NDArray[Any]], npt.NDArray[Any]], rowbase: npt.NDArray[np.intp]
) -> int:
    """The length of the longest string a state stands for: breadth-first from the root."""
    import numpy as np

    depth = 0
    seen = np.zeros(len(rowbase), dtype=bool)
    seen[0] = True
    frontier = np.zeros(1, dtype=np.intp)
    every_byte = np.arange(_ROW, dtype=np.intp)
    while frontier.size:
        reached = np.zeros(len(rowbase), dtype=bool)
        for i in range(0, len(frontier), _BFS_STATES):
            rows = rowbase[frontier[i : i + _BFS_STATES], None] + every_byte
            reached[next_states(rows.ravel())] = True
        reached &= ~seen
        seen |= reached
        frontier = np.flatnonzero(reached)
        depth += 1
    return depth - 1


# Letters that a Cyrillic alphabet has or lacks, for the label the letters contradict.
_AZ_CYRILLIC = frozenset("ҹҝј")
_AZ_ONLY_CYRILLIC = frozenset("ҹҝ")  # Azerbaijani Cyrillic (1958): ҹ = c, ҝ = g, ј = y
_TURKIC_CYRILLIC = frozenset("әөүһғ")
_SERBIAN_ONLY = frozenset("ђћљњџ")
# kk, tt, ba and Russian letters (Azerbaijani Cyrillic writes ј for й and has no ң or җ)
_NOT_AZ_CYRILLIC = frozenset("құңіҗҙҫҡщцьъюяёэй")
_UK_LETTERS = frozenset("іїєґ")
_RU_ONLY_LETTERS = frozenset("ыэъё")
_BE_LETTERS = frozenset("ўыэё")
_KK_ONLY = frozenset("құ")
_BA_ONLY = frozenset("ҙҫҡ")  # Kazakh, not Kyrgyz, Bashkir or Tatar
_KK_NOT_KY = frozenset("әғқұһі")  # Kazakh letters the Kyrgyz alphabet lacks
_BULGARIAN_LACKS = frozenset("ыэё")
# Words that only Russian (or only Ukrainian) writes, for a one-liner without a letter of its
# own: "Азербайджанцев — на фронт!" (Ukrainian would be Азербайджанців).
_RU_MARKER_RE = re.compile(
    r"(?<!\w)(?:что|это|как|его|если|только|уже|всех|было|будет|они|нет|\w{3,}(?:ов|ев|тся))(?!\w)"
)
_UK_MARKER_RE = re.compile(
    r"(?<!\w)(?:що|це|як|та|й|або|але|від|зі|щоб|вже|\w{2,}(?:ться|ння|ив|ав))(?!\w)"
)
# Tatar words whose Azerbaijani twins differ (вә, илә, үчүн, бир): ә without җ ң is Tatar too.
_TT_WORDS_RE = re.compile(r"(?<!\w)(?:белән|һәм|өчен|бер|кебек|буенча|дип|түгел)(?!\w)")
# A label chosen by its letters, not by the model's probability: reported with this confidence.
_CORRECTED_CONFIDENCE = 0.9

# --- one-liners -----------------------------------------------------------------------------
# Under this many characters of cleaned text a post is a one-liner: py3langid's byte n-grams
# see too little of it, and the words and spelling rules below take a second look.
ONE_LINER_CHARS = 80


def _words_re(words: str, endings: str = "") -> re.Pattern[str]:
    """Any of `words`, or a word of at least 3 letters before one of `endings`; a word
    starts after a letter or an apostrophe (Den'in is not the English "in")."""
    options = words.split()
    if endings:
        options.append(rf"\w{{3,}}(?:{'|'.join(endings.split())})")
    return re.compile(rf"(?<![\w'])(?:{'|'.join(options)})(?!\w)")


# Function words and endings one language of a confusable pair writes and the other does not
# (the spelling rules of each language, not a list learnt from any test set).
# Kyrgyz writes long vowels double (маалымат, түшүндүрүү) and rounds the vowels after ө ү
# (көптөн, мүчөлөрү; Kazakh көптен, мүшелері): in 86 % of Kyrgyz snippets, 0.4 % of Kazakh.
# Kyrgyz also writes the genitive with н (Боливиянын: Kazakh Боливияның).
_KY_LONG_VOWEL_RE = re.compile(
    r"аа|оо|уу|үү|өө|ээ|[өү][бвгджзйклмнңпрстфхцчшщ]{1,3}[өү]|\w\w[ндт][ыиуү]н(?!\w)"
)
_KY_WORDS_RE = _words_re("жана боюнча ушул менен үчүн тууралуу бул жөнүндө болгон эмес")
# A Kyrgyz label without Kyrgyz spelling is Kazakh where the model gives Kazakh this share.
_KK_OVER_KY = 0.5
_KK_WORDS_RE = _words_re("және бойынша осы бұл үшін туралы болған емес")
# Bulgarian: the short forms of съм (е, са), ще, the reflexive се, its own prepositions and
# pronouns, the aorist and imperfect (-ах -ех -ше), ъ before a consonant.
_BG_WORDS_RE = _words_re(
    "е са съм се ще след към колко това тази този тези които която който което беше бяха "
    "също ѝ през във със нито още има неща най си го му"
)
# ... and its definite articles, which say "not Russian" but could end a Russian verb.
_BG_ARTICLE_RE = _words_re("", "ите ата ото ът ят ше")
_BG_HARD_SIGN_RE = re.compile("ъ(?![еёюя])")
# Russian: words and case endings Bulgarian has not (no cases: -ого -ому -ами -ах -ую -ая).
_RU_WORDS_RE = _words_re(
    "что это его для который которая которые после также года году уже только если когда "
    "чтобы был была были было будет нет",
    "ого его ому ему ами ями ах ях ую юю ая яя ий ый ое",
)
# Ukrainian without і ї є ґ (У суботу агентство отримало широку): its own words, -ся after a
# vowel (опустилися: Russian -лись), -ння, the instrumental -ою.
_UK_ONE_LINER_RE = re.compile(
    _words_re(
        "що це та й тепер також щоб лише вже який яка яке як від але або",
        "лася лися лося тися ння ою",
    ).pattern
    # -ськ- (український: Russian -ск-) and отрима- (Russian получ-)
    + r"|\w*ськ\w*|(?<!\w)отрима\w*"
)
# Serbian adjective endings Russian writes longer (индонежанског: -ского).
_SR_ENDINGS_RE = _words_re("", "ског ском ској чког")
# Russian prepositions Tajik does not write (it has дар, аз, ба, бо).
_RU_PREPOSITIONS_RE = _words_re("от и в на с по из для")
_KY_GENITIVE_RE = re.compile(r"\w\w[ндт][ыу]н(?!\w)")
_TG_WORDS_RE = _words_re("дар ва ки аз бо ба ин он барои аст буд мешавад")
_TG_LETTERS = frozenset("ӣӯҷҳқғ")
_MK_ONLY = frozenset("ѓќѕ")
_SR_NOT_MK = frozenset("ћђ")
_MK_NOT_BG_RE = _words_re("от ще към съм")
_SR_WORDS_RE = _words_re("је који која које у није били зашто где када због")
_CYRILLIC_RE = re.compile("[\u0400-\u04ff]")
_LATIN_SCRIPT = frozenset(("en", "de", "fr", "tr"))  # not az uz sr: two scripts each
_CYRILLIC_TARGETS = ("ru", "uk", "be", "bg", "sr", "kk", "ky", "tg", "uz")
# Azerbaijani writes q and x for sounds Turkish spells k/g and h; Turkish has no q, x, w.
# ... in a lower-case word (Brexit, Xbox: names, not Azerbaijani).
_AZ_LATIN_RE = re.compile(r"(?<![\w'])[a-zəğıöşüç]*[qx][a-zəğıöşüç]*(?![\w'])")
# Turkish words whose Azerbaijani twins are spelt otherwise (və ilə üçün etdi isə artıq çox
# kimi deyil indi).
_TR_WORDS_RE = _words_re("ve ile için etti ise artık çok gibi değil şimdi")
# English function words, and French and Turkish ones, for a Latin one-liner py3langid calls
# English (names fill it: "M. Merriweather affirme que Saint Martin").
_EN_WORDS_RE = _words_re(
    "the and of to in is was for on with at by from that this it are were has have said"
)
_FR_WORDS_RE = _words_re(
    "le la les des du de un une et est sont que qui au aux sur dans pour avec par pas ne il "
    "elle ils été selon"
)
# A Turkish suffix after an apostrophe on a name (Den'in, Ankara'da, Trump'ın).
_TR_APOSTROPHE_RE = re.compile(
    r"\w'(?:n?[ıiuü]n|[dt][ae]n?|n?[ıiuü]|y?[ae]|l[ae]r\w*|[ıiuü]n[ıiuü]n)(?!\w)"
)


def one_liner_correction(code: str, text: str, probability: Callable[[str], float]) -> str:
    """A second look at the label of a one-liner (under `ONE_LINER_CHARS`), between the
    languages py3langid confuses on a few words: Kazakh and Kyrgyz, Russian and Bulgarian,
    Russian and Ukrainian without a letter of their own, Azerbaijani and Turkish, and
    English for a French or Turkish line full of names. Each rule needs a word or a
    spelling the other language does not write (or, between Kazakh and Kyrgyz, the model's
    own second choice); otherwise the label stands. `probability` is the model's for a code."""
    lowered = text.lower()
    rule = _ONE_LINER_RULES.get(code)
    corrected = rule(text, lowered, probability) if rule is not None else None
    if corrected is not None:
        return corrected
    if code in _LATIN_SCRIPT and len(_CYRILLIC_RE.findall(lowered)) >= 3:
        # Cyrillic words among Latin brand names (Бул Google Drive, Microsoft Outlook): the
        # likeliest Cyrillic language.
        return max(_CYRILLIC_TARGETS, key=probability)
    if code == "en" and not _EN_WORDS_RE.search(lowered):
        if _FR_WORDS_RE.search(lowered):
            return "fr"
        if _TR_APOSTROPHE_RE.search(lowered) or _TR_WORDS_RE.search(lowered):
            return "az" if _AZ_LATIN_RE.search(text) else "tr"
    return code


Probability = Callable[[str], float]


def _kyrgyz_genitive(lowered: str, probability: Probability, code: str) -> str | None:
    # Теннеси штатынын: a Kyrgyz genitive (Russian and Bulgarian have no -ынын)
    if _KY_GENITIVE_RE.search(lowered) and probability("ky") >= 0.05 * probability(code):
        return "ky"
    return None


def _from_ky(text: str, lowered: str, probability: Probability) -> str | None:
    kyrgyz = _KY_LONG_VOWEL_RE.search(lowered) or _KY_WORDS_RE.search(lowered)
    if not kyrgyz and (
        _KK_WORDS_RE.search(lowered) or probability("kk") >= _KK_OVER_KY * probability("ky")
    ):
        return "kk"
    return None


def _from_kk(text: str, lowered: str, probability: Probability) -> str | None:
    kyrgyz = _KY_LONG_VOWEL_RE.search(lowered) or _KY_WORDS_RE.search(lowered)
    kazakh = _KK_WORDS_RE.search(lowered) or frozenset(lowered) & _KK_NOT_KY
    return "ky" if kyrgyz and not kazakh else None


def _from_bg(text: str, lowered: str, probability: Probability) -> str | None:
    if (
        not _BG_HARD_SIGN_RE.search(lowered)
        and not _BG_WORDS_RE.search(lowered)
        and not _BG_ARTICLE_RE.search(lowered)
        and _RU_WORDS_RE.search(lowered)
    ):
        return "ru"
    return _kyrgyz_genitive(lowered, probability, "bg")


def _from_ru(text: str, lowered: str, probability: Probability) -> str | None:
    if _BG_HARD_SIGN_RE.search(lowered):
        return "bg"  # ъ before a consonant (във, България): Russian writes it before е ё ю я
    if frozenset(lowered) & _RU_ONLY_LETTERS:
        return _kyrgyz_genitive(lowered, probability, "ru")
    russian = _RU_WORDS_RE.search(lowered)
    if _BG_WORDS_RE.search(lowered) and not russian:
        return "bg"
    if _UK_ONE_LINER_RE.search(lowered) and not _RU_MARKER_RE.search(lowered):
        return "uk"
    if _SR_ENDINGS_RE.search(lowered) and not russian:
        return "sr"
    return _kyrgyz_genitive(lowered, probability, "ru")


def _from_mk(text: str, lowered: str, probability: Probability) -> str | None:
    letters = frozenset(lowered)
    if letters & _MK_ONLY:
        return None
    if letters & _SR_NOT_MK or _SR_WORDS_RE.search(lowered):
        return "sr"  # Serbian је, који, у, зашто; Macedonian е, кој, во, зошто
    if _BG_HARD_SIGN_RE.search(lowered) or _MK_NOT_BG_RE.search(lowered):
        return "bg"  # Bulgarian ъ, от, ще, към, съм; Macedonian од, ќе, кон, сум
    return None


def _from_uz(text: str, lowered: str, probability: Probability) -> str | None:
    if _CYRILLIC_RE.search(lowered) and "ў" not in lowered and _TG_WORDS_RE.search(lowered):
        return "tg"  # Tajik дар, ва, ки; Uzbek Cyrillic writes ў
    return None


def _from_tg(text: str, lowered: str, probability: Probability) -> str | None:
    if frozenset(lowered) & _TG_LETTERS or _TG_WORDS_RE.search(lowered):
        return None
    if (
        _RU_WORDS_RE.search(lowered)
        or _RU_PREPOSITIONS_RE.search(lowered)
        or probability("ru") >= 0.2 * probability("tg")
    ):
        return "ru"  # no Tajik letter nor word
    return None


def _from_ba(text: str, lowered: str, probability: Probability) -> str | None:
    # Bashkir writes ҙ ҫ ҡ in 96 % of its snippets
    if not frozenset(lowered) & _BA_ONLY and probability("kk") >= 0.2 * probability("ba"):
        return "kk"
    return None


def _from_crh(text: str, lowered: str, probability: Probability) -> str | None:
    if "ñ" in lowered:
        return None  # Crimean Tatar writes ñ
    return "az" if _AZ_LATIN_RE.search(text) else "tr"


def _from_tr(text: str, lowered: str, probability: Probability) -> str | None:
    if _AZ_LATIN_RE.search(text) and "w" not in lowered and not _TR_WORDS_RE.search(lowered):
        return "az"
    return None


def _from_az(text: str, lowered: str, probability: Probability) -> str | None:
    if "ə" not in lowered and not _AZ_LATIN_RE.search(text) and _TR_WORDS_RE.search(lowered):
        return "tr"
    return None


_ONE_LINER_RULES: dict[str, Callable[[str, str, Probability], str | None]] = {
    "ky": _from_ky,
    "kk": _from_kk,
    "bg": _from_bg,
    "ru": _from_ru,
    "mk": _from_mk,
    "uz": _from_uz,
    "tg": _from_tg,
    "ba": _from_ba,
    "crh": _from_crh,
    "tr": _from_tr,
    "az": _from_az,
}


def letter_correction(code: str, text: str) -> str:
    """The label the letters of a Cyrillic text demand where the model's label contradicts
    them; otherwise `code`.

    py3langid has never seen Azerbaijani in Cyrillic (it says ba or tt), and on one-liners it
    mixes up the East Slavic languages by their shared words ("Азербайджанцев — на фронт!" as
    uk, "Всім мігрантам — на фронт!" as be). The alphabets settle these: ҹ ҝ ј beside ә ө ү
    are Azerbaijani, and so is ə; қ ұ are Kazakh; Serbian has ј љ њ ћ ђ џ, Bulgarian none of
    those nor ы э ё; Belarusian has no и, Ukrainian no ы э ъ ё, Russian no і ї є ґ; and where
    a one-liner has no letter of its own, a word only Russian writes decides.
    """
    letters = frozenset(text.lower())
    if letters & _AZ_CYRILLIC and letters & _TURKIC_CYRILLIC and not letters & _SERBIAN_ONLY:
        return "az"
    if letters & _AZ_ONLY_CYRILLIC and not letters & _SERBIAN_ONLY:
        return "az"  # ҹ ҝ: no other alphabet of the region has them
    if "ј" in letters and "ы" in letters and not letters & _SERBIAN_ONLY:
        return "az"  # ј beside ы: Serbian has no ы, Russian and the Turkic alphabets no ј
    if (
        "ә" in letters
        and not letters & _NOT_AZ_CYRILLIC
        and not (code == "kk" and _KK_WORDS_RE.search(text.lower()))
        and not _TT_WORDS_RE.search(text.lower())
    ):
        return "az"  # ә without a letter or a word of Kazakh, Tatar or Bashkir
    if "ə" in letters:
        return "az"  # no other language of the region writes ə (Turkish, Crimean Tatar: no)
    if code == "ky" and letters & _KK_NOT_KY:
        return "kk"
    if code in ("ky", "ba", "tt") and (
        letters & _KK_ONLY or ("і" in letters and letters & _TURKIC_CYRILLIC)
    ):
        return "kk"
    if code == "bg" and letters & (_SERBIAN_ONLY | {"ј"}):
        return "sr"
    if code == "bg" and letters & _BULGARIAN_LACKS:
        return "ru"
    if code == "be" and "и" in letters:
        return "uk" if letters & _UK_LETTERS and not letters & _RU_ONLY_LETTERS else "ru"
    if code == "be" and letters & _UK_LETTERS and not letters & _BE_LETTERS:
        return "uk"  # "Всім мігрантам — на фронт!": no ў ы э ё, so not Belarusian
    if code == "uk" and letters & _RU_ONLY_LETTERS:
        return "be" if "ў" in letters else "ru"
    if code == "uk" and not letters & _UK_LETTERS:
        lowered = text.lower()
        if _RU_MARKER_RE.search(lowered) and not _UK_MARKER_RE.search(lowered):
            return "ru"
    if code == "ru" and letters & _UK_LETTERS and not letters & _RU_ONLY_LETTERS:
        return "be" if "ў" in letters else "uk"
    return code


@cache
def _py3langid_model() -> Py3langidModel:
    """py3langid's model, loaded once per process (~1 s)."""
    logger.info("loading py3langid model")
    return Py3langidModel()


class Py3langidDetector:
    """py3langid over the cleaned text; every label of the model is allowed."""

    def __init__(self) -> None:
        import numpy as np

        model = _py3langid_model()
        self._model = model
        self._codes = tuple(_code(label) for label in model.columns)
        # Codes that several labels map to (bs hr sr → sr): their columns, to sum.
        self._merged = {
            code: np.array([i for i, c in enumerate(self._codes) if c == code], dtype=np.intp)
            for code in set(self._codes)
            if self._codes.count(code) > 1
        }
        self._columns = {code: self._codes.index(code) for code in set(self._codes)}
        # One-liners: a language far from the region (Nigerian Pidgin, Malagasy, Occitan…)
        # must be 100x likelier than a target or a neighbour to be chosen over it.
        self._regional = np.array(
            [
                1.0 if c in TARGET_LANGUAGES or c in REGIONAL_NEIGHBOURS else 0.01
                for c in self._codes
            ],
            dtype=np.float32,
        )

    def detect(self, text: str) -> LanguageGuess:
        cleaned = clean_for_detection(text)
        if _LETTER_RE.search(cleaned) is None:
            return LanguageGuess(UNDETERMINED, 0.0)
        probabilities = self._model.probabilities(cleaned)
        one_liner = len(cleaned) < ONE_LINER_CHARS
        if one_liner:
            probabilities = probabilities * self._regional
        best = int(probabilities.argmax())
        code = self._codes[best]
        if code == UNDETERMINED:
            return LanguageGuess(UNDETERMINED, 0.0)
        corrected = letter_correction(code, cleaned)
        if one_liner:
            columns = self._columns

            def probability_of(code: str) -> float:
                return float(probabilities[columns[code]]) if code in columns else 0.0

            corrected = one_liner_correction(corrected, cleaned, probability_of)
        if corrected != code:
            return LanguageGuess(corrected, _CORRECTED_CONFIDENCE)
        merged = self._merged.get(code)
        probability = float(probabilities[best if merged is None else merged].sum())
        return LanguageGuess(code, round(min(probability, 1.0), 4))


@cache
def _langdetect_factory() -> Any:
    from langdetect import DetectorFactory
    from langdetect.detector_factory import init_factory

    DetectorFactory.seed = 0  # langdetect samples at random: a fixed seed makes it repeatable
    init_factory()  # loads the 55 language profiles, once per process
    return DetectorFactory


class LangdetectDetector:
    """langdetect 1.0.9, seeded; kept selectable because the first design named it."""

    def __init__(self) -> None:
        _langdetect_factory()

    def detect(self, text: str) -> LanguageGuess:
        from langdetect import detect_langs
        from langdetect.lang_detect_exception import LangDetectException

        cleaned = clean_for_detection(text)
        if _LETTER_RE.search(cleaned) is None:
            return LanguageGuess(UNDETERMINED, 0.0)
        try:
            ranked = detect_langs(cleaned)
        except LangDetectException:
            return LanguageGuess(UNDETERMINED, 0.0)
        if not ranked:
            return LanguageGuess(UNDETERMINED, 0.0)
        best = ranked[0]
        return LanguageGuess(_code(str(best.lang)), round(float(best.prob), 4))


def make_detector(name: Literal["py3langid", "langdetect"] = "py3langid") -> LanguageDetector:
    """A detector by name; its model is loaded now (once per process), not at import."""
    if name == "py3langid":
        return Py3langidDetector()
    if name == "langdetect":
        return LangdetectDetector()
    raise UnknownDetectorError(f"unknown language detector {name!r}: use py3langid or langdetect")
