"""Settings: the only reader of the environment.

Every variable is listed in `.env.example`. Each role checks what it needs with
`Settings.require_for(role)` at start and refuses with a message that says where to get the
missing value, including when the value is still the `.env.example` placeholder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["watcher", "triage", "bot"]
ROLES: tuple[Role, ...] = ("watcher", "triage", "bot")

# Values shipped in .env.example; a role refuses to start while one of them is still set.
PLACEHOLDERS = frozenset(
    {
        "123456789:REPLACE-WITH-YOUR-BOT-TOKEN",
        "REPLACE-WITH-YOUR-API-HASH",
        "0",
        "",
    }
)

WHERE = {
    "BOT_TOKEN": "create a bot with @BotFather in Telegram (/newbot) and copy the token",
    "TG_API_ID": "log in at https://my.telegram.org → API development tools",
    "TG_API_HASH": "log in at https://my.telegram.org → API development tools",
    "ADMIN_IDS": "your numeric Telegram user id (ask @userinfobot), comma-separated",
}


def parse_server(value: str) -> tuple[int, str, int]:
    """`host:port` or `dc@host:port` (DC 2 when not given) -> (dc, host, port)."""
    dc_text, _, address = value.strip().rpartition("@")
    host, sep, port_text = address.rpartition(":")
    try:
        dc, port = int(dc_text or 2), int(port_text)
    except ValueError:
        dc = port = 0
    if not sep or not host or not 0 < port < 65536 or dc <= 0:
        raise ValueError(f"TG_SERVER {value!r}: expected host:port or dc@host:port")
    return dc, host.strip("[]"), port


class ConfigError(Exception):
    """A setting a role needs is missing or still a placeholder."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    bot_token: SecretStr | None = Field(default=None, alias="BOT_TOKEN")
    bot_api_url: str | None = Field(default=None, alias="BOT_API_URL")
    admin_ids: str = Field(default="", alias="ADMIN_IDS")
    tg_api_id: int | None = Field(default=None, alias="TG_API_ID")
    tg_api_hash: SecretStr | None = Field(default=None, alias="TG_API_HASH")
    tg_session: str = Field(default="vigil", alias="TG_SESSION")
    # Another MTProto server than Telegram's production DC 2 (Telegram's test environment, or
    # the loopback server of the tests): host:port or dc@host:port, and its RSA public key.
    tg_server: str | None = Field(default=None, alias="TG_SERVER")
    tg_server_key: Path | None = Field(default=None, alias="TG_SERVER_KEY")
    redis_url: SecretStr | None = Field(default=None, alias="REDIS_URL")
    data_dir: Path = Field(default=Path("./data"), alias="VIGIL_DATA_DIR")
    # How long each Redis command waits out a restart, a full memory or a failing disk before
    # its role fails (and the process stops, for its supervisor to restart it).
    redis_ride_out_s: float = Field(default=60.0, ge=0, le=3600, alias="REDIS_RIDE_OUT_S")
    language_detector: Literal["py3langid", "langdetect"] = Field(
        default="py3langid", alias="LANGUAGE_DETECTOR"
    )
    archive_ttl_days: int = Field(default=30, ge=1, alias="ARCHIVE_TTL_DAYS")
    # A new post dated longer ago than this when it reaches triage (an export, a backlog) is
    # archived and counted, not alerted (`vigil ingest --alert` alerts it anyway); 0 = off.
    backfill_cutoff_h: float = Field(default=24.0, ge=0, alias="BACKFILL_CUTOFF_H")
    # The reconciler looks again for the alerted posts of the last this many days, on start
    # and with each edit sweep, and follows up those deleted while the watcher was down; 0 = off.
    deletion_check_days: float = Field(default=3.0, ge=0, le=30, alias="DELETION_CHECK_DAYS")
    # The most watches one analyst may own (shared watches they follow included).
    max_watches: int = Field(default=200, ge=1, le=10_000, alias="MAX_WATCHES")
    # /test and /search per analyst: searches a minute (one at a time), and how long the bot
    # waits for the triage role's answer.
    search_per_minute: int = Field(default=10, ge=1, le=1000, alias="SEARCH_PER_MINUTE")
    search_timeout_s: float = Field(default=90.0, gt=0, le=600, alias="SEARCH_TIMEOUT_S")
    # Desk-model suggestions an analyst who opted in (/suggest on) gets a day, at most.
    suggest_per_day: int = Field(default=3, ge=0, le=50, alias="SUGGEST_PER_DAY")
    global_rate_per_s: float = Field(default=25.0, gt=0, alias="DELIVERY_GLOBAL_RATE")
    chat_rate_per_s: float = Field(default=1.0, gt=0, alias="DELIVERY_CHAT_RATE")
    max_deliveries: int = Field(default=5, ge=1, alias="STREAM_MAX_DELIVERIES")
    claim_idle_s: float = Field(default=60.0, gt=0, alias="STREAM_CLAIM_IDLE_S")
    stream_maxlen: int = Field(default=1_000_000, ge=1000, alias="STREAM_MAXLEN")
    log_level: str = Field(default="INFO", alias="LOG_LEVEL")

    @field_validator("tg_server", "tg_server_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tg_server")
    @classmethod
    def _server_address(cls, value: str | None) -> str | None:
        if value is not None:
            parse_server(value)
        return value

    @field_validator("tg_api_id", mode="before")
    @classmethod
    def _empty_id_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("redis_url", "bot_token", "tg_api_hash", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @field_validator("bot_api_url", mode="before")
    @classmethod
    def _empty_url_is_none(cls, value: object) -> object:
        return None if value in ("", None) else value

    @property
    def admins(self) -> frozenset[int]:
        """ADMIN_IDS parsed; a malformed entry is a ConfigError, not a silent skip."""
        ids: set[int] = set()
        for part in self.admin_ids.replace(" ", "").split(","):
            if not part:
                continue
            if not part.lstrip("-").isdigit():
                raise ConfigError(
                    f"ADMIN_IDS: {part!r} is not a numeric Telegram user id ({WHERE['ADMIN_IDS']})"
                )
            if int(part) != 0:  # 0 is the .env.example placeholder, never a real user
                ids.add(int(part))
        return frozenset(ids)

    def missing_for(self, role: Role) -> list[str]:
        """Problems that stop `role` from starting, each naming the variable and the fix."""
        problems: list[str] = []

        def check_secret(name: str, value: SecretStr | None) -> None:
            if value is None or value.get_secret_value().strip() in PLACEHOLDERS:
                state = "is not set" if value is None else "is still the .env.example placeholder"
                problems.append(f"{name} {state}: {WHERE[name]}")

        if role == "bot":
            check_secret("BOT_TOKEN", self.bot_token)
            try:
                if not self.admins:
                    state = (
                        "is still the .env.example placeholder"
                        if self.admin_ids.strip() == "0"
                        else "is not set"
                    )
                    problems.append(f"ADMIN_IDS {state}: {WHERE['ADMIN_IDS']}")
            except ConfigError as exc:
                problems.append(str(exc))
        elif role == "watcher":
            if not self.tg_api_id:
                problems.append(f"TG_API_ID is not set: {WHERE['TG_API_ID']}")
            check_secret("TG_API_HASH", self.tg_api_hash)
        return problems

    def require_for(self, roles: tuple[Role, ...] | list[Role]) -> None:
        problems = [p for role in roles for p in self.missing_for(role)]
        if problems:
            raise ConfigError(
                "Vigil cannot start the requested roles:\n  - " + "\n  - ".join(problems)
            )
