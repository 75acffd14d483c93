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
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Protocol

__all__ = [
    "TARGET_LANGUAGES",
    "LangdetectDetector",
    "LanguageDetector",
    "LanguageGuess",
    "Py3langidDetector",
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
_MERGED_CODES = frozenset(_LABEL_TO_CODE.values())
# Long posts: the first characters decide; detection cost grows with length.
_MAX_CHARS = 2000

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
    """The text a detector sees: no URLs, mentions, emoji or '#'; at most 2,000 characters."""
    text = text[: _MAX_CHARS * 2]
    if _NOISE_HINT_RE.search(text) is not None or "www." in text.lower():
        text = _SPACES_RE.sub(" ", _NOISE_RE.sub(" ", text))
    return text.strip()[:_MAX_CHARS]


def _code(label: str) -> str:
    return _LABEL_TO_CODE.get(label, label)


@cache
def _py3langid_model() -> Any:
    """py3langid's model with normalised probabilities, loaded once per process (~1 s)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    logger.info("loading py3langid model")
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


class Py3langidDetector:
    """py3langid over the cleaned text; every label of the model is allowed."""

    def __init__(self) -> None:
        self._model = _py3langid_model()

    def detect(self, text: str) -> LanguageGuess:
        cleaned = clean_for_detection(text)
        if _LETTER_RE.search(cleaned) is None:
            return LanguageGuess(UNDETERMINED, 0.0)
        label, probability = self._model.classify(cleaned)
        code = _code(label)
        if code == UNDETERMINED:
            return LanguageGuess(UNDETERMINED, 0.0)
        if code in _MERGED_CODES:  # sum the labels merged into this code (bs + hr + sr)
            probability = sum(p for lbl, p in self._model.rank(cleaned) if _code(lbl) == code)
        return LanguageGuess(code, round(min(float(probability), 1.0), 4))


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
