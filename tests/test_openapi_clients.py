"""openapi.yaml as client generators read it: Spectral's OpenAPI ruleset finds nothing to say, and a
Python client generated from it by openapi-python-client (at test time, into a temporary
directory) calls the main endpoints of the real gunicorn."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from servers import Server, start_server

from service.config import REPO_ROOT
from service.store import SqliteStore

pytestmark = pytest.mark.slow

SPECTRAL = REPO_ROOT / "tools" / "node_modules" / ".bin" / "spectral"
KEY = "client-key-0123456789abcdef"
PESKOV = (
    "Kremlin spokesman Dmitry Peskov stressed that Moscow will keep up a constant dialogue with the new Syrian "
    "authorities."
)


def test_spectral_oas_ruleset_reports_nothing(tmp_path: Path) -> None:
    assert yaml.safe_load((REPO_ROOT / ".spectral.yaml").read_text(encoding="utf-8")) == {"extends": ["spectral:oas"]}
    report = tmp_path / "spectral.json"
    proc = subprocess.run(
        [str(SPECTRAL), "lint", "--ruleset", ".spectral.yaml", "--format", "json", "--output", str(report),
         "--fail-severity", "hint", "openapi.yaml"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    found = json.loads(report.read_text(encoding="utf-8"))
    assert found == [], [f"{r['code']} at {'.'.join(map(str, r['path']))}: {r['message']}" for r in found]
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_operation_has_an_id_a_summary_and_a_description() -> None:
    spec = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    assert spec["servers"]
    ids = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue  # the path's own parameters
            assert op.get("operationId") and op.get("summary") and op.get("description"), f"{method} {path}"
            ids.append(op["operationId"])
    assert len(ids) == len(set(ids)) == 12


@pytest.fixture(scope="module")
def client_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    tmp = tmp_path_factory.mktemp("client")
    (tmp / "config.yaml").write_text("post_hooks: []\n", encoding="utf-8")  # no formatter run on the output
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "openapi-python-client"), "generate", "--path",
         str(REPO_ROOT / "openapi.yaml"), "--output-path", str(tmp / "quotes_client"), "--meta", "none",
         "--config", str(tmp / "config.yaml")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr  # nothing it could not generate
    sys.path.insert(0, str(tmp))
    try:
        yield importlib.import_module("quotes_client")
    finally:
        sys.path.remove(str(tmp))
        for name in [n for n in sys.modules if n == "quotes_client" or n.startswith("quotes_client.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def server(built_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("client-server")
    store_path = tmp / "quotes.sqlite3"
    shutil.copy(built_store.path, store_path)
    with start_server(tmp, store_path, QUOTES_WORKERS="1", QUOTES_API_KEYS=KEY, QUOTES_RATE_LIMIT="off") as srv:
        yield srv


def test_a_generated_client_calls_the_main_endpoints(client_package: ModuleType, server: Server) -> None:
    pkg = client_package.__name__
    v1 = importlib.import_module(f"{pkg}.api.v1")
    ops = importlib.import_module(f"{pkg}.api.ops")
    models = importlib.import_module(f"{pkg}.models")
    for name in ("attribute_text", "attribute_documents", "compare_wordings", "extract_statements", "list_quotes",
                 "get_quote", "list_speakers", "get_speaker", "add_article", "get_info"):  # fmt: skip
        importlib.import_module(f"{pkg}.api.v1.{name}")
    for name in ("check_health", "check_readiness"):
        importlib.import_module(f"{pkg}.api.ops.{name}")
    base = f"http://127.0.0.1:{server.port}"
    with (
        client_package.Client(base_url=base, raise_on_unexpected_status=True) as client,
        client_package.Client(base_url=base) as lenient,
        client_package.AuthenticatedClient(base_url=base, token=KEY, prefix="", auth_header_name="X-API-Key") as writer,
    ):
        _call_every_endpoint(v1, ops, models, client, lenient, writer)


def _call_every_endpoint(v1: Any, ops: Any, models: Any, client: Any, lenient: Any, writer: Any) -> None:

    assert ops.check_readiness.sync(client=client).status == "ready"
    found = v1.attribute_text.sync(client=client, body=models.AttributionRequest(text=PESKOV, top_k=1))
    match = found.results[0].match
    assert match.speaker.name == "Dmitry Peskov" and match.label.value in ("verbatim", "paraphrase")
    assert match.sources and match.sources[0].outlet

    batch = v1.attribute_documents.sync(
        client=client, body=models.BatchRequest(documents=[models.BatchDocument(text=PESKOV, id="a")])
    )
    assert batch.documents[0].id == "a" and batch.documents[0].results

    compared = v1.compare_wordings.sync(
        client=client,
        body=models.SimilarityRequest(original="We do not want Russia to leave.", rendering="We want Russia to leave."),
    )
    assert not compared.clean and compared.flags[0].type_.value == "negation"

    extracted = v1.extract_statements.sync(
        client=client, body=models.ExtractionRequest(text='"We will talk," Peskov told reporters.')
    )
    assert extracted.mentions[0].kind.value == "direct" and extracted.mentions[0].cue_class.value == "speech"

    page = v1.list_quotes.sync(client=client, disputed=True, limit=5)
    assert page.total >= 1 and all(q.disputed for q in page.quotes)
    detail = v1.get_quote.sync(client=client, quote_id=page.quotes[0].id)
    assert len({v.speaker.id for v in detail.variants}) > 1

    speakers = v1.list_speakers.sync(client=client)
    peskov = v1.get_speaker.sync(client=client, speaker_id="dmitry-peskov")
    assert any(sp.id == "dmitry-peskov" for sp in speakers.speakers) and peskov.quote_ids

    info = v1.get_info.sync(client=client)
    assert info.model.name and info.limits.max_top_k == 10

    # Errors come back as the Problem model; writes need the key (an apiKey scheme: X-API-Key).
    refused = v1.attribute_text.sync_detailed(client=lenient, body=models.AttributionRequest(text=PESKOV, top_k=99))
    assert refused.status_code == 422 and refused.parsed.invalid_params[0]["name"] == "top_k"
    article = models.ArticleRequest(
        text='"We will reopen the embassy next month," Russian Foreign Minister Sergei Lavrov said.',
        outlet="Client Wire",
        url="https://example.org/client/lavrov",
    )
    added = v1.add_article.sync(client=writer, body=article)
    assert added.status.value == "added" and added.mentions
