"""Vigil's triage core: pure, synchronous, framework-free (no aiogram, telethon or redis).

`normalise` folds post text for matching and keeps offsets into the original, `inflection`
reduces words to match keys, `language` identifies the language; the query parser, index and
engine build on them.
"""
