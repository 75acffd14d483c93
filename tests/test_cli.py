"""The `vigil` command as a user runs it: real processes, embedded Redis in a temp dir."""

from __future__ import annotations

from pathlib import Path

from tests.support.service import vigil as run_vigil
from tests.support.service import vigil_env

FIXTURES = Path(__file__).parent / "fixtures" / "exports"
SAMPLE = Path(__file__).parent.parent / "bot" / "samples" / "demo_channel.json"


def vigil(*args: str, data_dir: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """Run `python -m bot ...` with a clean environment (no .env, embedded Redis)."""
    return run_vigil(
        *args, env=vigil_env(data_dir, **(env or {})), cwd=data_dir.parent, timeout=timeout
    )


def test_demo_prints_alerts_for_every_sample_watch(data_dir: Path) -> None:
    result = vigil("demo", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Ingest again: enqueued 0" in out
    for desk in ("Alice", "Bohdan", "Aysel"):
        assert f"→ to {desk}" in out
    assert "*мигрaнтов*" in out or "*мигрантов*" in out  # bold match, escaped HTML undone
    assert "Traceback" not in result.stderr


def test_ingest_twice_then_status(data_dir: Path) -> None:
    first = vigil("ingest", str(SAMPLE), "--channel", "@severny_vestnik_demo", data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    assert "enqueued 41" in first.stdout
    # The sample's posts are months old: the output says they are archived, not alerted.
    assert "archived for /test and /search, not alerted" in first.stdout
    second = vigil("ingest", str(SAMPLE), "--alert", data_dir=data_dir)
    assert "enqueued 0, duplicate 41" in second.stdout
    assert "archived for" not in second.stdout
    status = vigil("status", data_dir=data_dir)
    assert status.returncode == 0, status.stderr
    assert "vigil:{posts}:stream" in status.stdout
    line = next(x for x in status.stdout.splitlines() if x.startswith("vigil:{posts}:stream"))
    assert line.split()[2] == "41"  # stream length


def test_ingest_refuses_a_broken_file_naming_position_and_reason(
    data_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "result.json"
    broken.write_text('{"name": "X", "type": "public_channel", "id": 5, "messages": [{"id": 1,')
    result = vigil("ingest", str(broken), data_dir=data_dir)
    assert result.returncode == 2
    assert "result.json" in result.stderr and "byte" in result.stderr
    assert "nothing from this file was enqueued" in result.stderr
    status = vigil("status", "--json", data_dir=data_dir)
    assert '"length": 0' in status.stdout


def test_backtest_highlights_and_breaks_down_by_language(data_dir: Path) -> None:
    result = vigil("backtest", "біженець", str(SAMPLE), data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "[[Біженці]]" in result.stdout or "[[біженців]]" in result.stdout
    assert "posts matched." in result.stdout and "by language" in result.stdout
    assert not (data_dir / "appendonly.aof").exists()  # no Redis touched


def test_backtest_refuses_a_bad_query_with_position(data_dir: Path) -> None:
    result = vigil("backtest", "мигрант (выслать", str(SAMPLE), data_dir=data_dir)
    assert result.returncode == 2
    assert "query refused" in result.stderr and "^" in result.stderr


def test_roles_refuse_to_start_without_their_settings(data_dir: Path) -> None:
    bot = vigil("run", "--role", "bot", data_dir=data_dir)
    assert bot.returncode == 2
    assert "BOT_TOKEN is not set" in bot.stderr and "@BotFather" in bot.stderr
    placeholder = vigil(
        "run",
        "--role",
        "watcher",
        data_dir=data_dir,
        env={"TG_API_ID": "12345", "TG_API_HASH": "REPLACE-WITH-YOUR-API-HASH"},
    )
    assert placeholder.returncode == 2
    assert "TG_API_HASH is still the .env.example placeholder" in placeholder.stderr
    assert "my.telegram.org" in placeholder.stderr
    bad_role = vigil("run", "--role", "bot,spy", data_dir=data_dir)
    assert bad_role.returncode == 2 and "unknown role spy" in bad_role.stderr


def test_watcher_without_session_says_to_log_in(data_dir: Path) -> None:
    result = vigil(
        "run",
        "--role",
        "watcher",
        data_dir=data_dir,
        env={"TG_API_ID": "12345", "TG_API_HASH": "0123456789abcdef0123456789abcdef"},
    )
    assert result.returncode == 2
    assert "vigil login" in result.stderr
    assert "0123456789abcdef" not in result.stderr + result.stdout  # the hash is never echoed


def test_watch_commands(data_dir: Path) -> None:
    added = vigil("watch", "add", "77", "мигрант", "NEAR/3", "выслать", data_dir=data_dir)
    assert added.returncode == 0, added.stderr
    assert "мигрант NEAR/3 выслать" in added.stdout
    bad = vigil("watch", "add", "77", "--", "-мигрант", data_dir=data_dir)  # `--`: argparse
    assert bad.returncode == 2 and "query refused" in bad.stderr
    listed = vigil("watch", "list", data_dir=data_dir)
    assert "owner 77" in listed.stdout
    removed = vigil("watch", "remove", "1", data_dir=data_dir)
    assert removed.returncode == 0
    assert vigil("watch", "remove", "1", data_dir=data_dir).returncode == 2
