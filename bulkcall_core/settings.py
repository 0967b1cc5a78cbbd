"""The one settings object, shared by the dashboard, the worker, the web hooks and the CLI.

Values come from environment variables first, then from top-level keys of
`.streamlit/secrets.toml` (same names, any case). Everything has a zero-set-up default except
what can only be known by the operator (`PUBLIC_BASE_URL`, which is checked where it is needed).
"""

from __future__ import annotations

import base64
import os
import secrets
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bulkcall_core.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS_TOML = PROJECT_ROOT / ".streamlit" / "secrets.toml"
DEFAULT_TWILIO_API_BASE_URL = "https://api.twilio.com"
# Claims older than this are presumed abandoned by a dead worker and are re-checked against
# Twilio. Must comfortably exceed TWILIO_TIMEOUT_SECONDS plus a database round trip.
DEFAULT_CLAIM_TIMEOUT_SECONDS = 60.0
# One Twilio REST request may take this long before it is treated as ambiguous.
DEFAULT_TWILIO_TIMEOUT_SECONDS = 15.0


class Settings(BaseSettings):
    """Every tunable of the product. Read once with `get_settings()`."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", env_prefix="", validate_default=True
    )

    # Where the embedded defaults live: the SQLite file, the embedded Valkey, recordings, key.
    data_dir: Path = PROJECT_ROOT / "data"
    # SQLAlchemy URL; unset means a SQLite file under data_dir. postgresql:// is accepted and
    # mapped to the psycopg 3 driver.
    database_url: str | None = None
    # redis:// rediss:// or unix://; unset means the embedded Valkey under data_dir.
    redis_url: str | None = None
    # Fernet key (urlsafe base64 of 32 bytes) that encrypts Twilio auth tokens at rest. Unset
    # means a key generated once into data_dir/secret.key; set it explicitly when the
    # dashboard and workers run on more than one machine.
    bulkcall_secret_key: str | None = None
    twilio_api_base_url: str = DEFAULT_TWILIO_API_BASE_URL
    # The address at which Twilio reaches this product's web hooks server (audio files and
    # status callbacks), e.g. https://calls.example.com. Required to launch a campaign.
    public_base_url: str | None = None
    # Where the web hooks server (audio + status callbacks) listens.
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8502
    # Dashboard access when no OIDC provider is configured: a shared password.
    dashboard_password: str | None = None
    twilio_timeout_seconds: float = DEFAULT_TWILIO_TIMEOUT_SECONDS
    claim_timeout_seconds: float = DEFAULT_CLAIM_TIMEOUT_SECONDS
    # RQ queue name, so that several installs can share one Redis.
    queue_name: str = "bulkcall"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _secrets_toml_path()
        if toml_path.is_file():
            sources.append(_LowercaseToml(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator(
        "database_url",
        "redis_url",
        "public_base_url",
        "dashboard_password",
        "bulkcall_secret_key",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme = urlsplit(value).scheme
        if scheme in ("postgres", "postgresql"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        if not (scheme.startswith("postgresql") or scheme.startswith("sqlite")):
            raise ValueError("must start with postgresql:// or sqlite:///")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in (
            "redis",
            "rediss",
            "unix",
        ):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("twilio_api_base_url", "public_base_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "must be an http:// or https:// address, like https://calls.example.com"
            )
        return value.rstrip("/")

    @field_validator("bulkcall_secret_key")
    @classmethod
    def _check_secret_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(value.encode())
        except (ValueError, TypeError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                "must be a Fernet key (32 bytes, url-safe base64); make one with "
                "python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            )
        return value

    @field_validator("twilio_timeout_seconds", "claim_timeout_seconds")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL in use: DATABASE_URL or the SQLite file under data_dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'bulkcall.sqlite3'}"

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None

    @property
    def embedded_redis_socket(self) -> Path:
        return self.data_dir / "valkey" / "valkey.sock"

    @property
    def login_configured(self) -> bool:
        """True when the dashboard asks who you are: DASHBOARD_PASSWORD, or an OIDC provider
        (an `[auth]` section with a client_id) in .streamlit/secrets.toml. Without either, the
        dashboard must listen on localhost only."""
        if self.dashboard_password:
            return True
        auth = _secrets_toml().get("auth")
        if not isinstance(auth, dict):
            return False
        return bool(auth.get("client_id")) or any(
            isinstance(v, dict) and v.get("client_id") for v in auth.values()
        )

    @property
    def recordings_dir(self) -> Path:
        return self.data_dir / "recordings"

    def secret_key(self) -> bytes:
        """The Fernet key: BULKCALL_SECRET_KEY, else one generated once into data_dir."""
        if self.bulkcall_secret_key:
            return self.bulkcall_secret_key.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key = base64.urlsafe_b64encode(secrets.token_bytes(32))
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
        return path.read_bytes().strip()


def _secrets_toml_path() -> Path:
    return Path(os.environ.get("BULKCALL_SECRETS_TOML", SECRETS_TOML))


def _secrets_toml() -> dict[str, Any]:
    """The whole secrets.toml ({} when absent or unreadable: Streamlit reports its own errors)."""
    try:
        with _secrets_toml_path().open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


class _LowercaseToml(TomlConfigSettingsSource):
    """secrets.toml keys are matched case-insensitively, like environment variables."""

    def __call__(self) -> dict[str, Any]:
        return {k.lower(): v for k, v in super().__call__().items() if not isinstance(v, dict)}


def load_settings(**overrides: Any) -> Settings:
    """Read the settings now; raise SettingsError naming the variable when a value is bad."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]).upper()
            reason = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name} {reason}")
        raise SettingsError("Bad setting: " + "; ".join(problems), field=None) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
