"""The learned relevance models: cold start, learning both ways with reasons, change of mind,
bytes, hostile text, the desk model's threshold, and the engine seam."""

from __future__ import annotations

import math
import struct
import zlib
from datetime import UTC, datetime

import pytest

import bot.triage.relevance as relevance_module
from bot.models import Forward, Post
from bot.triage.engine import TriageEngine, WatchSpec
from bot.triage.index import WatchMatch
from bot.triage.language import LanguageGuess
from bot.triage.normalise import normalise
from bot.triage.priority import Relevance
from bot.triage.relevance import (
    COLD_START,
    FORMAT_VERSION,
    Background,
    DeskModel,
    Example,
    LearnedRelevance,
    ModelFormatError,
    PostFeatures,
    RelevanceClassifier,
    VerdictSet,
    calibrate_threshold,
    extract_features,
    features_of_post,
)

RU = LanguageGuess("ru", 0.99)
UK = LanguageGuess("uk", 0.99)
ANALYST = 7
WATCH = 70

RELEVANT = [
    "Депутат предложил депортировать мигрантов из страны",
    "Мигрантов вышлют за нарушения, заявили в думе",
    "Власти решили выслать мигрантов без разрешения",
    "Требуют депортировать всех мигрантов немедленно",
    "Депортация мигрантов начнётся в понедельник",
    "Выслать мигрантов предлагает новая партия",
    "Мигранты будут высланы, сообщил депутат",
]
NOISE = [
    "Погода завтра: дождь и сильный ветер в столице",
    "Прогноз погоды на выходные: похолодание",
    "Погода в Москве будет солнечной всю неделю",
    "Синоптики: погода испортится к вечеру, ожидается гроза",
    "Жара и сухая погода продержатся до пятницы",
    "Погода на праздники: снег и гололёд",
    "Какая погода ждёт нас в апреле, рассказали синоптики",
    "Погода: туман и морось утром",
    "Тёплая погода вернётся на следующей неделе",
]


def post(text: str, channel: int = 100, message: int = 1, **kw: object) -> Post:
    return Post(
        channel_id=channel,
        message_id=message,
        date=datetime(2025, 1, 1, tzinfo=UTC),
        text=text,
        username="chan",
        **kw,  # type: ignore[arg-type]
    )


def feats(text: str, channel: int = 100, language: str = "ru") -> PostFeatures:
    return extract_features(normalise(text), channel_id=channel, language=language)


def trained(relevant: int = len(RELEVANT), noise: int = len(NOISE)) -> RelevanceClassifier:
    verdicts: VerdictSet[int] = VerdictSet()
    for i, text in enumerate(RELEVANT[:relevant]):
        verdicts.record(i, Example(feats(text), True, WATCH))
    for i, text in enumerate(NOISE[:noise]):
        verdicts.record(100 + i, Example(feats(text), False, WATCH))
    return verdicts.train()


def assess(
    judge: LearnedRelevance, text: str, owner: int = ANALYST, language: LanguageGuess = RU
) -> tuple[int, str | None]:
    p = post(text)
    match = WatchMatch(WATCH, owner, ("x",), ((0, 1),))
    result = judge.assess(p, match, language, normalise(p.text))
    return result.steps, result.reason


def test_no_model_and_cold_start_change_nothing() -> None:
    assert assess(LearnedRelevance(), "Депортировать мигрантов") == (0, None)
    few = trained(relevant=COLD_START - 1, noise=len(NOISE))
    judge = LearnedRelevance({ANALYST: few})
    assert few.verdict_count == (COLD_START - 1, len(NOISE))
    assert assess(judge, "Власти решили депортировать мигрантов") == (0, None)
    assert assess(judge, "Погода завтра: дождь") == (0, None)


def test_similar_posts_move_up_and_down_with_reasons_naming_words() -> None:
    model = trained()
    judge = LearnedRelevance({ANALYST: model})
    up, up_reason = assess(judge, "Депутат снова требует выслать мигрантов")
    down, down_reason = assess(judge, "Погода завтра: снова дождь")
    assert up == 1 and down == -1
    assert up_reason is not None and up_reason.startswith("learned ↑: like ")
    assert "you marked relevant" in up_reason
    assert "мигрантов" in up_reason or "выслать" in up_reason
    assert down_reason is not None and down_reason.startswith("learned ↓: like ")
    assert "погода" in down_reason
    # The count is of the analyst's noise posts that share the post's strong words.
    count = int(down_reason.split("like ")[1].split(" ")[0])
    assert 1 <= count <= len(NOISE)
    # Another analyst's alert is not judged by this analyst's model.
    assert assess(judge, "Депутат требует выслать мигрантов", owner=ANALYST + 1) == (0, None)


def test_strongest_words_each_way() -> None:
    up, down = trained().strongest_words(5)
    assert "погода" in down
    assert any(w.startswith(("мигрант", "депорт", "высл")) for w in up)
    assert not set(up) & set(down)


def test_change_of_mind_replaces_the_earlier_verdict() -> None:
    verdicts: VerdictSet[str] = VerdictSet()
    for i, text in enumerate(RELEVANT):
        verdicts.record(f"r{i}", Example(feats(text), True))
    for i, text in enumerate(NOISE):
        verdicts.record(f"n{i}", Example(feats(text), False))
    before = verdicts.train()
    probe = feats("Погода завтра: дождь")
    # The analyst changes their mind: the weather posts were relevant after all.
    for i, text in enumerate(NOISE):
        verdicts.record(f"n{i}", Example(feats(text), True))
    for i, text in enumerate(RELEVANT):
        verdicts.record(f"r{i}", Example(feats(text), False))
    after = verdicts.train()
    assert len(verdicts) == len(RELEVANT) + len(NOISE)
    assert after.verdict_count == (len(NOISE), len(RELEVANT))
    assert before.predict_proba(probe) < 0.5 < after.predict_proba(probe)


def test_mute_is_a_noise_verdict_on_the_channel() -> None:
    verdicts: VerdictSet[int] = VerdictSet()
    for i, text in enumerate(RELEVANT):
        verdicts.record(i, Example(feats(text, channel=5), True))
    for i, text in enumerate(NOISE):
        verdicts.record(100 + i, Example(feats(text, channel=6), False))
    probe = feats("Новости дня", channel=9)
    base = verdicts.train().predict_proba(probe)
    verdicts.mute(9)
    muted = verdicts.train()
    assert muted.verdict_count == (len(RELEVANT), len(NOISE) + 1)
    assert muted.predict_proba(probe) < base
    verdicts.unmute(9)
    assert verdicts.train().verdict_count == (len(RELEVANT), len(NOISE))


def test_bytes_round_trip_and_version() -> None:
    model = trained()
    data = model.to_bytes()
    again = RelevanceClassifier.from_bytes(data)
    assert data[3] == FORMAT_VERSION
    assert again.verdict_count == model.verdict_count
    assert again.strongest_words() == model.strongest_words()
    for text in (*RELEVANT[:2], *NOISE[:2], "совсем другое"):
        f = feats(text)
        assert again.predict_proba(f, WATCH) == pytest.approx(
            model.predict_proba(f, WATCH), abs=2e-3
        )
        assert again.explain(f, True) == model.explain(f, True)
    assert len(data) < 64_000
    with pytest.raises(ModelFormatError):
        RelevanceClassifier.from_bytes(data[:3] + bytes((FORMAT_VERSION + 1,)) + data[4:])
    with pytest.raises(ModelFormatError):
        RelevanceClassifier.from_bytes(b"nonsense")
    with pytest.raises(ModelFormatError):
        RelevanceClassifier.from_bytes(data[:4] + data[4:20])


def test_empty_model_round_trips() -> None:
    empty = RelevanceClassifier.train([])
    again = RelevanceClassifier.from_bytes(empty.to_bytes())
    assert again.verdict_count == (0, 0)
    assert again.predict_proba(feats("что угодно")) == pytest.approx(0.5)


HOSTILE = [
    "",
    "   ",
    "🔥🔥🔥 💣 🇺🇦",
    "‏שלום עולם‏ مرحبا بالعالم",  # RTL with marks
    "мигр\u200bантов вы\u200dслать",  # zero-width inside words
    "депортировать " * 1500,  # ~21,000 characters, one word repeated
    "а" * 10_000,  # one 10,000-letter "word"
    "\ud800 lone surrogate",
    "#мигранты @someone https://t.me/x/1",
]


@pytest.mark.parametrize("text", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_text_scores_without_error(text: str) -> None:
    model = trained()
    judge = LearnedRelevance({ANALYST: model})
    f = feats(text)
    assert 0.0 <= model.predict_proba(f, WATCH) <= 1.0
    steps, reason = assess(judge, text)
    assert steps in (-1, 0, 1)
    assert (reason is None) == (steps == 0)
    # A hostile post as a verdict trains and serialises too.
    verdicts: VerdictSet[int] = VerdictSet()
    verdicts.record(0, Example(f, True))
    verdicts.record(1, Example(feats("Погода"), False))
    RelevanceClassifier.from_bytes(verdicts.train().to_bytes())


def test_zero_width_tricks_read_as_the_plain_word() -> None:
    plain, tricked = feats("мигрантов выслать"), feats("мигр\u200bантов вы\u200dслать")
    assert set(plain.indices.tolist()) == set(tricked.indices.tolist())


def test_features_are_computed_once_per_post() -> None:
    judge = LearnedRelevance({ANALYST: trained()})
    p = post("Депутат требует выслать мигрантов")
    first = judge.features(p, RU, None)
    assert judge.features(p, RU, None) is first
    assert judge.features(post("другой"), RU, None) is not first


def test_forward_flag_is_a_feature() -> None:
    plain = features_of_post(post("Текст"), "ru")
    forwarded = features_of_post(post("Текст", forward=Forward(1, 2)), "ru")
    assert len(forwarded.indices) == len(plain.indices) + 1


def test_swapping_models_is_whole_and_reversible() -> None:
    judge = LearnedRelevance()
    model = trained()
    judge.update(ANALYST, model)
    snapshot = judge.models
    assert assess(judge, "Погода завтра: дождь")[0] == -1
    judge.update(ANALYST, None)  # reset / learning off
    assert assess(judge, "Погода завтра: дождь") == (0, None)
    assert ANALYST in snapshot  # a reader holding the old mapping was not changed under it
    judge.replace({ANALYST: model})
    assert assess(judge, "Погода завтра: дождь")[0] == -1


def test_engine_passes_the_model_its_normalised_text() -> None:
    judge = LearnedRelevance({ANALYST: trained()})
    engine = TriageEngine(_FixedLanguage(), relevance=judge)
    engine.add_watch(WatchSpec(WATCH, ANALYST, "погода OR мигрант", "normal"))
    off = TriageEngine(_FixedLanguage())
    off.add_watch(WatchSpec(WATCH, ANALYST, "погода OR мигрант", "normal"))
    noisy = post("Погода на завтра: снова дождь и ветер")
    (scored,) = engine.triage(noisy).matches
    (plain,) = off.triage(noisy).matches
    assert plain.priority == "normal" and scored.priority == "low"
    assert any(r.startswith("learned ↓") for r in scored.reasons)


class _FixedLanguage:
    def detect(self, text: str) -> LanguageGuess:
        return RU


def test_background_idf_favours_rare_words() -> None:
    sample = [feats(t) for t in ["и в на погода", "и в на", "и в на дождь", "и в"]]
    background = Background.from_features(sample)
    f = feats("и погода")
    idf = background.idf(f.indices)
    common = feats("и").indices[0]
    rare = f.indices[list(f.indices).index(feats("погода").indices[0])]
    assert idf[list(f.indices).index(common)] < idf[list(f.indices).index(rare)]
    model = RelevanceClassifier.train(
        [Example(feats(t), True) for t in RELEVANT] + [Example(feats(t), False) for t in NOISE],
        background=background,
    )
    assert model.predict_proba(feats("Погода завтра")) < 0.5


def test_calibrated_threshold_caps_suggestions_per_day() -> None:
    scores = [i / 100 for i in range(100)]
    threshold = calibrate_threshold(scores, days=2, per_day=3)
    assert sum(s > threshold for s in scores) == 6
    assert calibrate_threshold([], days=2, per_day=3) == math.inf
    assert calibrate_threshold(scores, days=1, per_day=0) == math.inf
    assert calibrate_threshold(scores[:4], days=2, per_day=3) == 0.0


def test_desk_model_suggests_only_above_its_threshold() -> None:
    relevant = [feats(t) for t in RELEVANT]
    noise = [feats(t) for t in NOISE]
    unmatched = [feats(t) for t in ("Футбол: счёт матча", "Курс валют на сегодня", "Кино")]
    desk = DeskModel.train(relevant, noise, unmatched)
    recent = [feats(t) for t in (*NOISE, *RELEVANT[:3], "Футбол", "Курс рубля")]
    calibrated = desk.calibrated(recent, days=1, per_day=2)
    assert sum(calibrated.suggest(f) for f in recent) <= 2
    assert calibrated.suggest(feats("Депутат требует депортировать мигрантов"))
    assert not calibrated.suggest(feats("Погода завтра: дождь"))
    again = DeskModel.from_bytes(calibrated.to_bytes())
    assert again.threshold == calibrated.threshold
    # Never calibrated: suggests nothing.
    assert not desk.suggest(feats("Депутат требует депортировать мигрантов"))


def test_confident_noise_is_held_and_the_rest_is_not() -> None:
    model = trained()
    # Calibrated from cross-validation, for the one language of its relevant verdicts.
    assert set(model.hold_by_language) == {"ru"}
    assert math.isfinite(model.hold_threshold("ru"))
    assert model.hold_below == model.hold_threshold("en") == -math.inf
    judge = LearnedRelevance({ANALYST: model})
    p = post("Погода завтра: снова дождь")
    held = judge.assess(p, WatchMatch(WATCH, ANALYST, ("x",), ((0, 1),)), RU, normalise(p.text))
    assert held.steps == -1 and held.hold and held.reason is not None
    assert held.reason.startswith("learned ↓: like ")
    q = post("Депутат снова требует выслать мигрантов")
    up = judge.assess(q, WatchMatch(WATCH, ANALYST, ("x",), ((0, 1),)), RU, normalise(q.text))
    assert up.steps == 1 and not up.hold
    again = RelevanceClassifier.from_bytes(model.to_bytes())
    assert again.hold_below == -math.inf
    assert again.hold_by_language == pytest.approx(model.hold_by_language, abs=1e-5)
    # The desk model is never calibrated: it only suggests.
    desk = DeskModel.train([feats(t) for t in RELEVANT], [feats(t) for t in NOISE])
    assert desk.model.hold_ceiling == -math.inf


UK_RELEVANT = [
    "Депутат запропонував депортувати мігрантів з країни",
    "Мігрантів вишлють за порушення, заявили в раді",
    "Влада вирішила вислати мігрантів без дозволу",
    "Вимагають депортувати всіх мігрантів негайно",
]
UK_NOISE = [
    "Погода завтра: дощ і сильний вітер у столиці",
    "Прогноз погоди на вихідні: похолодання",
    "Погода в Києві буде сонячною весь тиждень",
    "Синоптики: погода зіпсується до вечора, очікується гроза",
    "Спека і суха погода протримаються до пʼятниці",
    "Погода на свята: сніг і ожеледиця",
]


def _bilingual(uk_relevant: int) -> RelevanceClassifier:
    """Russian verdicts both ways; Ukrainian noise, and this many Ukrainian relevant posts."""
    verdicts: VerdictSet[str] = VerdictSet()
    for i, text in enumerate(RELEVANT):
        verdicts.record(f"r{i}", Example(feats(text), True, WATCH))
    for i, text in enumerate(NOISE):
        verdicts.record(f"n{i}", Example(feats(text), False, WATCH))
    for i, text in enumerate(UK_NOISE):
        verdicts.record(f"un{i}", Example(feats(text, language="uk"), False, WATCH))
    for i, text in enumerate(UK_RELEVANT[:uk_relevant]):
        verdicts.record(f"ur{i}", Example(feats(text, language="uk"), True, WATCH))
    return verdicts.train()


def test_a_post_unlike_every_relevant_verdict_and_like_the_noise_is_held() -> None:
    judge = LearnedRelevance({ANALYST: trained()})
    p = post("Синоптики: завтра погода снова испортится, дождь и ветер")
    (held,) = judge.assess_all(p, _matches([ANALYST]), RU, normalise(p.text))
    assert held.hold and held.steps == -1
    assert held.reason is not None and "погода" in held.reason
    # Like a relevant verdict (other words around it): never held, whatever else it has.
    for text in (
        "Власти снова решили выслать мигрантов, сообщает погода-центр",
        "Мигрантов депортируют: депутат выступил в думе",
    ):
        q = post(text)
        (kept,) = judge.assess_all(q, _matches([ANALYST]), RU, normalise(q.text))
        assert not kept.hold and kept.steps >= 0, text


def test_nothing_is_held_in_a_language_without_relevant_verdicts() -> None:
    # All of the analyst's Ukrainian verdicts are noise: the model has learned that Ukrainian
    # words mean noise, and cannot tell a relevant Ukrainian post from the rest.
    model = _bilingual(uk_relevant=0)
    assert set(model.hold_by_language) == {"ru"}
    judge = LearnedRelevance({ANALYST: model})
    weather_uk = "Погода завтра: знову дощ і вітер"
    # Confident noise, and below the Russian threshold (one threshold for all would hold it).
    decision = model.decision(feats(weather_uk, language="uk"), WATCH)
    assert decision < math.log(judge.p_down / (1 - judge.p_down))
    assert decision < model.hold_threshold("ru")
    assert assess(judge, weather_uk, language=UK) == (0, None)
    # Nor with one relevant Ukrainian verdict (HOLD_MIN_RELEVANT is two) ...
    one = _bilingual(uk_relevant=1)
    assert "uk" not in one.hold_by_language
    assert assess(LearnedRelevance({ANALYST: one}), weather_uk, language=UK)[0] == 0
    # ... while Russian weather is held as before.
    assert assess(judge, "Погода завтра: снова дождь")[0] == -1
    # With relevant Ukrainian verdicts the model knows Ukrainian relevant posts: it holds.
    taught = _bilingual(uk_relevant=len(UK_RELEVANT))
    assert "uk" in taught.hold_by_language
    steps, reason = assess(LearnedRelevance({ANALYST: taught}), weather_uk, language=UK)
    assert steps == -1 and reason is not None and "погода" in reason
    assert assess(LearnedRelevance({ANALYST: taught}), UK_RELEVANT[0], language=UK)[0] == 1


def test_format_1_models_are_read_and_never_hold() -> None:
    model = trained()
    data = model.to_bytes()
    body = zlib.decompress(data[4:])
    # Format 1 is format 2 without the hold threshold at the end of the header.
    size = struct.calcsize("<IIfIII")
    old = data[:3] + bytes((1,)) + zlib.compress(body[:size] + body[size + 4 :])
    assert old[3] == 1
    again = RelevanceClassifier.from_bytes(old)
    assert again.hold_below == -math.inf
    assert again.verdict_count == model.verdict_count
    f = feats("Погода завтра: дождь")
    assert again.predict_proba(f, WATCH) == pytest.approx(model.predict_proba(f, WATCH), abs=2e-3)
    judge = LearnedRelevance({ANALYST: again})
    assert assess(judge, "Погода завтра: снова дождь") == (0, None)


def test_format_2_models_are_read_and_hold_on_their_one_threshold() -> None:
    model = trained()
    data = model.to_bytes()
    body = zlib.decompress(data[4:])
    # Format 2 is format 3 with one threshold in the header and no per-language tail.
    size = struct.calcsize("<IIfIIIf")
    threshold = model.hold_threshold("ru")
    header = body[: size - 4] + struct.pack("<f", threshold)
    tail = struct.pack("<I", 1) + struct.pack("<B", 2) + b"ru" + struct.pack("<f", threshold)
    assert body.endswith(tail)
    old = data[:3] + bytes((2,)) + zlib.compress(header + body[size : -len(tail)])
    again = RelevanceClassifier.from_bytes(old)
    assert again.hold_by_language == {}
    assert again.hold_threshold("ru") == again.hold_threshold("uk") == pytest.approx(threshold)
    judge = LearnedRelevance({ANALYST: again})
    assert assess(judge, "Погода завтра: снова дождь")[0] == -1


MANY = [
    "Мигранты прибыли в город на автобусах",
    "Погода испортится: дождь и гроза",
    "Депутаты обсудили выслать нарушителей",
    "Синоптики обещают снег в выходные",
    "Власти решили депортировать группу мигрантов",
    "Курс рубля снова упал, сообщили аналитики",
    "Футбольный матч закончился со счётом 2:1",
    "В столице открыли новый парк и музей",
]


def _matches(owners: list[int]) -> list[WatchMatch]:
    return [WatchMatch(WATCH + o, o, ("x",), ((0, 1),)) for o in owners]


def test_all_matches_of_a_post_are_scored_as_each_one_alone() -> None:
    models = {
        ANALYST: trained(),
        ANALYST + 1: trained(relevant=4, noise=5),
        ANALYST + 2: trained(),
    }
    models[ANALYST + 2] = trained(relevant=COLD_START - 1)  # before the cold start
    together = LearnedRelevance(models)
    alone = LearnedRelevance(models)
    for i, text in enumerate(MANY + NOISE[:3] + RELEVANT[:3]):
        p = post(text, message=i)
        matches = _matches([ANALYST, ANALYST + 1, ANALYST + 2, ANALYST + 3, ANALYST])
        got = together.assess_all(p, matches, RU, normalise(p.text))
        assert got == [alone.assess(p, m, RU, normalise(p.text)) for m in matches]
        assert got[2] == got[3] == Relevance()
        f = features_of_post(p, "ru", normalise(p.text))
        for m, r in zip(matches[:2], got[:2], strict=True):
            assert r == together.judge(models[m.owner_id], f, m.watch_id)


def test_scores_stay_exact_across_model_swaps_and_word_cache_turnover(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = trained(), trained(relevant=5, noise=6)
    judge = LearnedRelevance({ANALYST: a, ANALYST + 1: b})

    def check(models: dict[int, RelevanceClassifier]) -> None:
        for i, text in enumerate(MANY + RELEVANT + NOISE):
            p = post(text, message=i)
            f = features_of_post(p, "ru", normalise(p.text))
            bank = judge._bank
            got = bank.text_decisions(f, list(models))
            want = [m.text_decision(f) for m in models.values()]
            # The bank keeps its sums in half precision (relevance.SUMS_DTYPE): within 1e-3
            # of the log-odds the model computes in full (a probability within 3e-4).
            assert got == pytest.approx(want, abs=1e-3)

    check({ANALYST: a, ANALYST + 1: b})
    judge.update(ANALYST + 1, a)  # one analyst's model changes: the other's sums carry over
    check({ANALYST: a, ANALYST + 1: a})
    judge.update(ANALYST, None)
    check({ANALYST + 1: a})
    # A tiny word cache: words are evicted and their slots given to other words all the time.
    monkeypatch.setattr(relevance_module, "WORD_CACHE_SIZE", 12)
    for _ in range(3):
        check({ANALYST + 1: a})
