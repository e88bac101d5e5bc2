"""All configuration, read from environment variables in one place and validated at start.

Every variable is listed in the README's configuration table; `Settings.from_env` is the only reader.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable and the fix."""


def _path(env: Mapping[str, str], name: str, default: Path) -> Path:
    raw = env.get(name, "").strip()
    return Path(raw).expanduser() if raw else default


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number (expected {lo}..{hi})") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is out of range (expected {lo}..{hi})")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer (expected {lo}..{hi})") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw!r} is out of range (expected {lo}..{hi})")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} is not one of {', '.join(choices)}")
    return raw


def _keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """API keys from QUOTES_API_KEYS (comma-separated) and/or QUOTES_API_KEYS_FILE (one per line)."""
    keys = [k.strip() for k in env.get("QUOTES_API_KEYS", "").split(",") if k.strip()]
    key_file = env.get("QUOTES_API_KEYS_FILE", "").strip()
    if key_file:
        try:
            lines = Path(key_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"QUOTES_API_KEYS_FILE={key_file!r} cannot be read: {exc.strerror}") from None
        keys += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    for key in keys:
        if len(key) < 16:
            raise ConfigError("API keys must be at least 16 characters long (QUOTES_API_KEYS / _FILE)")
    return tuple(keys)


@dataclass(frozen=True, slots=True)
class Settings:
    store_path: Path = REPO_ROOT / "var" / "quotes.sqlite3"
    corpus_dir: Path = REPO_ROOT / "corpus"
    model_dir: Path = REPO_ROOT / "models" / "all-MiniLM-L6-v2"
    speakers_file: Path | None = None  # default: <corpus_dir>/speakers.json when it exists
    max_text_chars: int = 100_000
    max_body_bytes: int = 1_048_576
    max_batch_documents: int = 32
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    read_requires_key: bool = False
    log_level: str = "info"
    log_format: str = "json"
    cors_origins: tuple[str, ...] = ()
    trusted_proxies: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        corpus_dir = _path(env, "QUOTES_CORPUS_DIR", REPO_ROOT / "corpus")
        speakers_raw = env.get("QUOTES_SPEAKERS_FILE", "").strip()
        return cls(
            store_path=_path(env, "QUOTES_STORE_PATH", REPO_ROOT / "var" / "quotes.sqlite3"),
            corpus_dir=corpus_dir,
            model_dir=_path(env, "QUOTES_MODEL_DIR", REPO_ROOT / "models" / "all-MiniLM-L6-v2"),
            speakers_file=Path(speakers_raw) if speakers_raw else None,
            max_text_chars=_int(env, "QUOTES_MAX_TEXT_CHARS", 100_000, 1_000, 5_000_000),
            max_body_bytes=_int(env, "QUOTES_MAX_BODY_BYTES", 1_048_576, 4_096, 50_000_000),
            max_batch_documents=_int(env, "QUOTES_MAX_BATCH_DOCUMENTS", 32, 1, 1_000),
            api_keys=_keys(env),
            read_requires_key=_choice(env, "QUOTES_READ_REQUIRES_KEY", "false", ("true", "false")) == "true",
            log_level=_choice(env, "QUOTES_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            log_format=_choice(env, "QUOTES_LOG_FORMAT", "json", ("json", "text")),
            cors_origins=tuple(o.strip() for o in env.get("QUOTES_CORS_ORIGINS", "").split(",") if o.strip()),
            trusted_proxies=_int(env, "QUOTES_TRUSTED_PROXIES", 0, 0, 10),
        )

    def effective_speakers_file(self) -> Path | None:
        if self.speakers_file is not None:
            return self.speakers_file
        default = self.corpus_dir / "speakers.json"
        return default if default.exists() else None
