"""All configuration, read from environment variables in one place and validated at start.

Every variable is listed in the README's configuration table; `Settings.from_env` is the only reader.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .model_files import onnx_export_problem
from .thresholds import Thresholds

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


def _optional_float(env: Mapping[str, str], name: str, lo: float, hi: float) -> float | None:
    return _float(env, name, 0.0, lo, hi) if env.get(name, "").strip() else None


def _bind(env: Mapping[str, str]) -> str:
    """host:port (IPv4 or [IPv6]) or unix:/path; checked here so a typo stops the start with its name."""
    raw = env.get("QUOTES_BIND", "").strip() or "127.0.0.1:8000"
    if raw.startswith("unix:") and len(raw) > 5:
        return raw
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"QUOTES_BIND={raw!r} is not HOST:PORT (e.g. 127.0.0.1:8000) or unix:/path")
    return raw


def _rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    """A Flask-Limiter limit string such as "120/minute" or "10 per second;1000/hour"; "off" disables."""
    raw = env.get(name, "").strip() or default
    if raw.lower() == "off":
        return ""
    from limits import parse_many

    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a rate limit such as '120/minute' (or 'off')") from None
    return raw


def _store_url(env: Mapping[str, str]) -> str:
    """QUOTES_STORE_URL: a postgresql:// URL (libpq's form), or empty for the SQLite file."""
    raw = env.get("QUOTES_STORE_URL", "").strip()
    if not raw:
        return ""
    if not raw.startswith(("postgresql://", "postgres://")):
        raise ConfigError("QUOTES_STORE_URL must be a postgresql:// URL (or unset for the SQLite file)")
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(raw)
    except Exception:  # psycopg.ProgrammingError; the message could echo the password
        raise ConfigError("QUOTES_STORE_URL is not a valid postgresql:// URL") from None
    return raw


def _storage_uri(env: Mapping[str, str]) -> str:
    raw = env.get("QUOTES_RATE_LIMIT_STORAGE", "").strip() or "memory://"
    if not raw.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
        raise ConfigError(f"QUOTES_RATE_LIMIT_STORAGE={raw!r} must be memory:// or a redis:// URL")
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


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    """Browser origins allowed by CORS: "*" or scheme://host[:port], comma-separated."""
    origins = tuple(o.strip().rstrip("/") for o in env.get("QUOTES_CORS_ORIGINS", "").split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", origin):
            raise ConfigError(f"QUOTES_CORS_ORIGINS: {origin!r} is not an origin such as https://cms.example.org")
    return origins


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True, slots=True)
class Settings:
    store_path: Path = REPO_ROOT / "var" / "quotes.sqlite3"
    store_url: str = field(default="", repr=False)  # PostgreSQL instead of the file; may hold a password
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
    # Matching thresholds; None keeps the calibrated values in service/calibration.json.
    paraphrase_threshold: float | None = None
    related_threshold: float | None = None
    # Embedding: the backend, and how concurrent requests in one worker share the model.
    embedding_backend: str = "torch"
    batch_wait_ms: float = 0.0
    batch_max_texts: int = 64
    encode_cache_size: int = 4096
    # Vector search: exact float32 for small stores, a compact approximate index for large ones.
    vector_index: str = "auto"
    # Rate limits (Flask-Limiter strings; "" = off), per API key or else per client address.
    rate_limit: str = "600/minute"
    rate_limit_write: str = "30/minute"
    rate_limit_storage: str = field(default="memory://", repr=False)  # a Redis URL may hold a password
    # gunicorn (read by gunicorn.conf.py).
    bind: str = "127.0.0.1:8000"
    workers: int = field(default_factory=lambda: _default_workers())
    threads: int = 4
    timeout: int = 60
    graceful_timeout: int = 30
    max_requests: int = 2000
    max_requests_jitter: int = 200
    # glibc's mmap threshold in an int8 worker, in bytes (0: glibc's own, which rises as blocks are freed).
    mmap_threshold: int = 8_388_608

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        corpus_dir = _path(env, "QUOTES_CORPUS_DIR", REPO_ROOT / "corpus")
        speakers_raw = env.get("QUOTES_SPEAKERS_FILE", "").strip()
        settings = cls(
            store_path=_path(env, "QUOTES_STORE_PATH", REPO_ROOT / "var" / "quotes.sqlite3"),
            store_url=_store_url(env),
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
            cors_origins=_origins(env),
            trusted_proxies=_int(env, "QUOTES_TRUSTED_PROXIES", 0, 0, 10),
            paraphrase_threshold=_optional_float(env, "QUOTES_PARAPHRASE_THRESHOLD", 0.0, 1.0),
            related_threshold=_optional_float(env, "QUOTES_RELATED_THRESHOLD", 0.0, 1.0),
            embedding_backend=_choice(env, "QUOTES_EMBEDDING_BACKEND", "torch", ("torch", "onnx-int8")),
            batch_wait_ms=_float(env, "QUOTES_BATCH_WAIT_MS", 0.0, 0.0, 100.0),
            batch_max_texts=_int(env, "QUOTES_BATCH_MAX_TEXTS", 64, 1, 1024),
            encode_cache_size=_int(env, "QUOTES_ENCODE_CACHE_SIZE", 4096, 0, 1_000_000),
            vector_index=_choice(env, "QUOTES_VECTOR_INDEX", "auto", ("auto", "exact", "compact")),
            rate_limit=_rate_limit(env, "QUOTES_RATE_LIMIT", "600/minute"),
            rate_limit_write=_rate_limit(env, "QUOTES_RATE_LIMIT_WRITE", "30/minute"),
            rate_limit_storage=_storage_uri(env),
            bind=_bind(env),
            workers=_int(env, "QUOTES_WORKERS", _default_workers(), 1, 64),
            threads=_int(env, "QUOTES_THREADS", 4, 1, 64),
            timeout=_int(env, "QUOTES_TIMEOUT", 60, 1, 3600),
            graceful_timeout=_int(env, "QUOTES_GRACEFUL_TIMEOUT", 30, 1, 3600),
            max_requests=_int(env, "QUOTES_MAX_REQUESTS", 2000, 0, 10_000_000),
            max_requests_jitter=_int(env, "QUOTES_MAX_REQUESTS_JITTER", 200, 0, 1_000_000),
            mmap_threshold=_int(env, "QUOTES_MMAP_THRESHOLD", 8_388_608, 0, 33_554_432),
        )
        if settings.read_requires_key and not settings.api_keys:
            raise ConfigError("QUOTES_READ_REQUIRES_KEY=true needs QUOTES_API_KEYS or QUOTES_API_KEYS_FILE")
        return settings

    def thresholds(self, calibrated: tuple[float, float]) -> tuple[float, float]:
        """(paraphrase, related): the calibrated values with the configured overrides applied."""
        p = self.paraphrase_threshold if self.paraphrase_threshold is not None else calibrated[0]
        r = self.related_threshold if self.related_threshold is not None else calibrated[1]
        if r > p:
            raise ConfigError(
                f"the related threshold {r} is above the paraphrase threshold {p} "
                "(QUOTES_RELATED_THRESHOLD / QUOTES_PARAPHRASE_THRESHOLD against service/calibration.json)"
            )
        return p, r

    def model_threads(self) -> int:
        """Threads the model (torch or ONNX Runtime) may use in each worker, so that workers x threads
        stays within the cores."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    def check_start(self) -> None:
        """What a server needs, checked before it starts (a running but never-ready server helps nobody)."""
        calibrated = Thresholds.load()
        self.thresholds((calibrated.paraphrase, calibrated.related))
        if not (self.model_dir / "config.json").is_file():
            raise ConfigError(
                f"QUOTES_MODEL_DIR={str(self.model_dir)!r} holds no model; run `python -m service model install`"
            )
        if self.embedding_backend == "onnx-int8":
            problem = onnx_export_problem(self.model_dir)
            if problem:
                raise ConfigError(f"QUOTES_EMBEDDING_BACKEND=onnx-int8: {problem}")
        if self.store_url:
            from .store import StoreError
            from .store.postgres import PostgresStore

            try:
                held = PostgresStore.exists(self.store_url)
            except StoreError as exc:
                raise ConfigError(f"QUOTES_STORE_URL: {exc}") from None
            if not held:
                raise ConfigError(
                    "QUOTES_STORE_URL names a database without a quote store; run `python -m service build`"
                )
        elif not self.store_path.is_file():
            raise ConfigError(
                f"QUOTES_STORE_PATH={str(self.store_path)!r} does not exist; run `python -m service build`"
            )

    @property
    def store_location(self) -> str:
        """Where the store is: QUOTES_STORE_URL when set, else the SQLite file."""
        return self.store_url or str(self.store_path)

    def effective_speakers_file(self) -> Path | None:
        if self.speakers_file is not None:
            return self.speakers_file
        default = self.corpus_dir / "speakers.json"
        return default if default.exists() else None
