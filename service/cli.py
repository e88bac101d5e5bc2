"""Command line: `python -m service COMMAND` (also installed as `quotes`).

Every command works on the pipeline directly, without the HTTP API. Errors print one line to stderr
and exit with status 2 (bad input or configuration), 3 (`model export-onnx`: the int8 backend is
refused on this CPU) or 1 (anything else).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from marshmallow import Schema

from .config import ConfigError, Settings
from .corpus import ArticleMeta, CorpusError, decode_text, make_article, parse_date, parse_url, read_text_file
from .embed import load_embedder
from .model_files import ModelError, OnnxExport, install_model, onnx_export_problem, quantization_for_cpu, verify_model
from .onnx_export import Int8Refused, export_onnx
from .records import CanonicalQuote
from .schemas import (
    AddedArticle,
    ArticleResponse,
    Extracted,
    ExtractionResponse,
    QuoteDetail,
    QuotePage,
    QuotePageSchema,
    SpeakerList,
    SpeakerQuotes,
    Speakers,
)
from .speakers import RegistryError, SpeakerRegistry
from .store import Store, StoreError, open_store


def _print_json(schema: Schema, value: Any) -> None:
    """`value` as the API answers it (service/schemas.py)."""
    print(json.dumps(schema.dump(value), indent=2, ensure_ascii=False))


def _speaker_names(registry: SpeakerRegistry) -> dict[str, str]:
    return {sp.id: sp.name for sp in registry.snapshot()}


def _open_store(settings: Settings) -> Store:
    embedder = load_embedder(settings.model_dir)
    return open_store(settings.store_location, embedder.name, embedder.revision)


def cmd_model(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "install":
        changed = install_model(settings.model_dir)
        print(f"model {'installed' if changed else 'already in place'} at {settings.model_dir}", file=sys.stderr)
    elif args.action == "export-onnx":
        quantization = args.quantization or quantization_for_cpu()
        started = time.monotonic()
        changed = export_onnx(
            settings.model_dir,
            quantization=quantization,
            corpus_dir=settings.corpus_dir,
            speakers_file=settings.effective_speakers_file(),
        )
        record = OnnxExport.read(settings.model_dir)
        assert record is not None and record.file is not None
        where = settings.model_dir / record.file
        if changed:
            seconds = time.monotonic() - started
            print(f"exported the int8 ONNX model ({_describe(record)}) to {where} in {seconds:.0f} s", file=sys.stderr)
        else:
            print(f"int8 ONNX model ({_describe(record)}) already in place at {where}", file=sys.stderr)
    else:
        verify_model(settings.model_dir)
        print(f"model at {settings.model_dir} matches its checksums", file=sys.stderr)
        problem = onnx_export_problem(settings.model_dir)
        record = OnnxExport.read(settings.model_dir)
        if problem is None and record is not None:
            files = "its two files' checksums" if record.data_file else "its checksum"
            print(f"int8 ONNX export ({_describe(record)}) matches {files}", file=sys.stderr)
        else:
            print(problem, file=sys.stderr)
        if problem and settings.embedding_backend == "onnx-int8":
            raise ModelError(f"QUOTES_EMBEDDING_BACKEND=onnx-int8: {problem}")
    return 0


def _describe(record: OnnxExport) -> str:
    return (
        f"{record.quantization}, {len(record.kept_fp32)} MatMuls kept in fp32, cosine to torch >= "
        f"{record.min_cosine:.4f} on {record.statements} corpus statements"
    )


def cmd_build(args: argparse.Namespace, settings: Settings) -> int:
    from .build import build_if_stale

    corpus = Path(args.corpus) if args.corpus else settings.corpus_dir
    store = args.store or settings.store_location
    speakers = Path(args.speakers) if args.speakers else settings.effective_speakers_file()
    if args.speakers is None and args.corpus:
        candidate = corpus / "speakers.json"
        speakers = candidate if candidate.exists() else None
    report = build_if_stale(corpus, store, settings.model_dir, speakers, force=args.force)
    if report is None:
        print(f"store at {_where(store)} is up to date with {corpus}", file=sys.stderr)
        return 0
    print(
        f"built {report.location}: {report.articles} articles, {report.mentions} statements, "
        f"{report.quotes} canonical quotes ({report.disputed} disputed), {report.speakers} speakers",
        file=sys.stderr,
    )
    return 0


def _where(location: str) -> str:
    from .store.postgres import redact

    return redact(location)


def _read_input(path: str) -> str:
    if path == "-":
        return decode_text(sys.stdin.buffer.read(), "standard input")
    return read_text_file(Path(path))


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from .ingest import add_article
    from .nlp import load_nlp

    text = _read_input(args.file)
    meta = ArticleMeta(
        outlet=args.outlet,
        url=parse_url(args.url, "--url"),
        published=parse_date(args.published, "--published"),
        language=args.language,
        title=args.title or "",
    )
    store = _open_store(settings)
    report = add_article(
        store,
        make_article(text, meta, file=None if args.file == "-" else Path(args.file).name),
        load_embedder(settings.model_dir),
        load_nlp(),
    )
    _print_json(ArticleResponse(), AddedArticle(report, _speaker_names(store.registry())))
    return 0


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from .bulk import run_cli

    return run_cli(
        Path(args.path),
        args.store or settings.store_location,
        settings.model_dir,
        settings.embedding_backend,
        args.workers,
        args.quiet,
    )


def _default_workers() -> int:
    # On two cores a worker process only competes with this one (measured: docs/store-scale.md).
    cores = os.cpu_count() or 1
    return min(4, cores - 1) if cores > 2 else 0


def _workers(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if not 0 <= n <= 64:
        raise argparse.ArgumentTypeError(f"{n} is out of range (0..64)")
    return n


def cmd_speakers(args: argparse.Namespace, settings: Settings) -> int:
    rows = _open_store(settings).speakers()
    if args.json:
        _print_json(SpeakerList(), Speakers([SpeakerQuotes(sp, n) for sp, n in rows]))
        return 0
    for sp, n in rows:
        if sp.kind.value == "media" and not args.all:
            continue
        aliases = ", ".join(sorted(a for a in sp.aliases if a != sp.name))
        print(f"{sp.id:<28} {sp.kind.value:<12} {n:>3} quotes  {sp.name}" + (f"  [{aliases}]" if aliases else ""))
    return 0


def _quote_line(q: CanonicalQuote) -> str:
    flag = " DISPUTED" if q.disputed else ""
    return f"{q.id}  {len(q.sources)} src  {q.speaker_name or '-'}{flag}: {q.text[:90]!r}"


def cmd_quotes(args: argparse.Namespace, settings: Settings) -> int:
    total, quotes = _open_store(settings).quotes(
        speaker_id=args.speaker,
        search=args.search,
        disputed=True if args.disputed else None,
        limit=args.limit,
        offset=args.offset,
    )
    if args.json:
        _print_json(QuotePageSchema(), QuotePage(total, args.limit, args.offset, quotes))
        return 0
    for q in quotes:
        print(_quote_line(q))
    print(f"{len(quotes)} of {total}", file=sys.stderr)
    return 0


def cmd_quote(args: argparse.Namespace, settings: Settings) -> int:
    quote = _open_store(settings).quote(args.id)
    if quote is None:
        print(f"error: no quote {args.id!r}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(QuoteDetail(), quote)
        return 0
    print(_quote_line(quote))
    for a in quote.attributions:
        print(
            f"  said by {a.speaker_name} ({a.speaker_id}) according to {a.sources} source(s), {a.mentions} mention(s)"
        )
    for v in quote.variants:
        src = v.source
        print(f"  - {src.outlet} {src.published or 'undated'} {src.url}")
        print(f"    {v.kind.value}, {v.cue!r} by {v.speaker_mention!r} → {v.speaker_id}: {v.text!r}")
    return 0


def cmd_extract(args: argparse.Namespace, settings: Settings) -> int:
    from .corpus import article_id, content_hash
    from .extract import extract_article
    from .nlp import load_nlp
    from .records import Article

    text = _read_input(args.file)
    registry = SpeakerRegistry()
    try:
        registry = _open_store(settings).registry()
    except (StoreError, ModelError):
        speakers = settings.effective_speakers_file()
        if speakers is not None:
            registry.load_file(speakers)
    url = args.url or "urn:stdin"
    article = Article(article_id(url), args.outlet or "", url, None, "en", "", text, content_hash=content_hash(text))
    extraction = extract_article(article, registry, load_nlp())
    _print_json(ExtractionResponse(), Extracted(extraction.mentions, _speaker_names(registry)))
    return 0


def cmd_eval_extraction(args: argparse.Namespace, settings: Settings) -> int:
    from .evaluate import GOLD, evaluate_extraction, format_scores

    if args.polnear:
        return _eval_polnear(args)
    scores = evaluate_extraction(
        settings.corpus_dir, Path(args.gold) if args.gold else GOLD, settings.effective_speakers_file()
    )
    print(format_scores(scores))
    if args.errors:
        for line in scores["all"].errors:
            print("  " + line)
    return 0


def _eval_polnear(args: argparse.Namespace) -> int:
    from .nlp import load_nlp
    from .polnear import PolnearError, evaluate_polnear, format_report, iter_errors

    started = time.perf_counter()
    try:
        report = evaluate_polnear(Path(args.polnear), load_nlp(), limit=args.limit)
    except PolnearError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(format_report(report))
    print(f"({elapsed:.1f} s, {report.words / elapsed:,.0f} words/s with scoring)")
    if args.errors:
        for line in iter_errors(report):
            print(line)
    return 0


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    import yaml

    from .api import openapi_document

    print(yaml.safe_dump(openapi_document(), sort_keys=False, allow_unicode=True), end="")
    return 0


STORE_HELP = "store path or postgresql:// URL (default: QUOTES_STORE_URL, else QUOTES_STORE_PATH)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m service", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    m = sub.add_parser("model", help="materialise, export (int8 ONNX) or verify the embedding model in models/")
    m.add_argument("action", choices=("install", "export-onnx", "verify"))
    m.add_argument(
        "--quantization",
        choices=("avx512_vnni", "avx512", "avx2", "arm64"),
        help="export-onnx: int8 preset (default: the one this CPU's instruction set suits)",
    )
    m.set_defaults(func=cmd_model)

    b = sub.add_parser("build", help="build the quote store from a corpus directory (skipped when up to date)")
    b.add_argument("--corpus", help="corpus directory (default: QUOTES_CORPUS_DIR)")
    b.add_argument("--store", help=STORE_HELP)
    b.add_argument("--speakers", help="hand-kept speakers file (default: <corpus>/speakers.json if present)")
    b.add_argument("--force", action="store_true", help="rebuild even when the store is up to date")
    b.set_defaults(func=cmd_build)

    a = sub.add_parser("add", help="add one article to the store (idempotent by URL and content)")
    a.add_argument("file", help="article text file, or - for standard input")
    a.add_argument("--outlet", required=True)
    a.add_argument("--url", required=True)
    a.add_argument("--published", help="ISO date, e.g. 2025-01-29")
    a.add_argument("--title")
    a.add_argument("--language", default="en")
    a.set_defaults(func=cmd_add)

    i = sub.add_parser(
        "ingest",
        help="add many articles: a JSONL file or a directory (*.jsonl, *.json, or a corpus); resumable",
    )
    i.add_argument("path", help="JSONL file (one {text, outlet, url, published, title} per line) or directory")
    i.add_argument(
        "--workers",
        type=_workers,
        default=_default_workers(),
        help="extraction processes, each with its own spaCy and model (0: all in this process; "
        "default: cores - 1, none on 2 cores or fewer)",
    )
    i.add_argument("--store", help=STORE_HELP)
    i.add_argument("--quiet", action="store_true", help="no progress bar (the summary is still printed)")
    i.set_defaults(func=cmd_ingest)

    s = sub.add_parser("speakers", help="list speakers")
    s.add_argument("--json", action="store_true")
    s.add_argument("--all", action="store_true", help="include news media")
    s.set_defaults(func=cmd_speakers)

    q = sub.add_parser("quotes", help="list or search canonical quotes")
    q.add_argument("--speaker", help="speaker id")
    q.add_argument("--search", help="words the quote contains")
    q.add_argument("--disputed", action="store_true", help="only quotes whose sources disagree on the speaker")
    q.add_argument("--limit", type=int, default=50)
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_quotes)

    one = sub.add_parser("quote", help="one canonical quote with its variants, sources and attributions")
    one.add_argument("id")
    one.add_argument("--json", action="store_true")
    one.set_defaults(func=cmd_quote)

    e = sub.add_parser("extract", help="the attributed statements of a file or stdin, as JSON (store untouched)")
    e.add_argument("file", nargs="?", default="-")
    e.add_argument("--url")
    e.add_argument("--outlet")
    e.set_defaults(func=cmd_extract)

    ev = sub.add_parser(
        "eval-extraction",
        help="extraction scores against eval/gold/extraction.json, or a PolNeAR-format directory (--polnear)",
    )
    ev.add_argument("--gold")
    ev.add_argument(
        "--polnear", metavar="DIR", help="a PolNeAR split (text/, attributions/), e.g. ../shared/polnear/dev"
    )
    ev.add_argument("--limit", type=int, help="with --polnear: only the first N articles (in name order)")
    ev.add_argument("--errors", action="store_true", help="list misses, spurious and wrong speakers")
    ev.set_defaults(func=cmd_eval_extraction)
    o = sub.add_parser("openapi", help="print the OpenAPI document the app generates (openapi.yaml)")
    o.set_defaults(func=cmd_openapi)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except (ConfigError, CorpusError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Int8Refused as exc:  # scripts/install.sh goes on without the int8 backend on this status
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (ModelError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; the store is unchanged", file=sys.stderr)
        return 130
