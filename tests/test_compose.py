"""compose.yaml, checked without a container engine: it must mirror tests/test_replicas.py.

Two API replicas of the image, one PostgreSQL with pgvector (a named volume), one Redis, health
checks, the store created before the replicas start, secrets only from the environment, and every
QUOTES_* value one that service/config.py accepts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import Settings

COMPOSE = Path(__file__).resolve().parent.parent / "compose.yaml"
SECRET = "s3cret-from-the-environment"  # noqa: S105 (a stand-in value, not a secret)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, from `env`."""

    def value(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", value, text)


def load(env: dict[str, str]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolate(COMPOSE.read_text(encoding="utf-8"), env))
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load({"POSTGRES_PASSWORD": SECRET})


def test_two_api_replicas_on_one_postgres_and_one_redis(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"db", "redis", "init", "api"}
    assert services["db"]["image"] == "pgvector/pgvector:pg16"
    assert services["redis"]["image"].startswith("redis:")
    api = services["api"]
    assert api["deploy"]["replicas"] == 2
    assert api["image"] == services["init"]["image"] and "build" in services["init"]
    env = api["environment"]
    assert env["QUOTES_STORE_URL"] == f"postgresql://quotes:{SECRET}@db:5432/quotes"
    assert env["QUOTES_RATE_LIMIT_STORAGE"] == "redis://redis:6379/0"
    assert services["init"]["environment"]["QUOTES_STORE_URL"] == env["QUOTES_STORE_URL"]
    # The store is made before the replicas start, by the same command as ./run serve's install.
    assert services["init"]["command"][-3:] == ["-m", "service", "build"]
    assert api["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
        "init": {"condition": "service_completed_successfully"},
    }
    assert all(p.startswith("127.0.0.1:") for p in api["ports"]), "published on loopback only"
    assert api["stop_grace_period"] == "35s"


def test_health_checks_and_the_named_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("db", "redis", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert "pgdata" in compose["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]


def test_secrets_come_from_the_environment() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD:?" in text
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):
        load({})
    assert not re.search(r"(PASSWORD|API_KEYS):\s+[^$\s]", text), "a literal secret in compose.yaml"


def test_every_setting_is_one_the_service_accepts(compose: dict[str, Any]) -> None:
    for name in ("init", "api"):
        env = {k: "" if v is None else str(v) for k, v in compose["services"][name]["environment"].items()}
        assert all(k.startswith("QUOTES_") for k in env)
        settings = Settings.from_env(env)  # raises ConfigError on a value the service refuses
        assert settings.store_url.startswith("postgresql://")
