"""bot/malloc.py: glibc takes the settings, and an operator's own MALLOC_* variables win."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = "from bot.malloc import tune_malloc; print(tune_malloc())"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
@pytest.mark.parametrize(
    ("extra", "expected"),
    [({}, "True"), ({"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": "65536"}, "True")],
)
def test_settings_apply_in_a_fresh_process(extra: dict[str, str], expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | extra
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_an_operators_variables_are_not_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.malloc as module

    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    class FakeFn:
        argtypes: object = None
        restype: object = None

        def __call__(self, param: int, value: int) -> int:
            return Libc().mallopt(param, value)

    class FakeCDLL:
        mallopt = FakeFn()

    monkeypatch.setattr(module.ctypes, "CDLL", lambda _name: FakeCDLL())
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert module.tune_malloc()
    assert calls == [(module.M_MMAP_THRESHOLD, module.MMAP_THRESHOLD)]
