"""The int8 ONNX export: made on the machine that serves, kept only if it agrees with torch fp32.

`python -m service model export-onnx` (run by scripts/install.sh) exports the verified torch
weights to ONNX and quantises them dynamically to int8 with optimum's preset for this CPU
(`embed.quantization_for_cpu`). Dynamic int8 scales each activation tensor with one factor, and
what that costs depends on the preset and on the CPU's kernels (without VNNI, u8 x s8 products go
through VPMADDUBSW, which can saturate): a preset tuned on one CPU broke the promise on another.
So the export measures instead of trusting a preset.

The promise: cosine >= INT8_MIN_COSINE between the int8 and the torch fp32 vector of every corpus
statement (every mention the extractor finds in the corpus, and each of its sentences), both
computed as the service computes them (`Embedder`, one text per ONNX run).

The ladder, climbed until a rung keeps the promise (INT8_LADDER; measurements in models/README.md):

- rung 0: the preset as optimum defines it, every MatMul in int8. The embedding tables stay fp32
  (INT8_OPERATORS): an int8 lookup table saves no arithmetic, and its one scale over the whole
  vocabulary costs accuracy.
- then the 1, 2, 4, 8, 16 MatMuls most sensitive to quantisation stay fp32. A MatMul's
  sensitivity is its own error: the relative difference between its int8 output and its fp32
  output computed from the same fp32 inputs (the node's int8 subgraph run alone by ONNX Runtime,
  so this CPU's kernels count), summed over the statements; measured once, on rung 0.

Per-tensor weights and reduce_range are not on the ladder: on every preset they lowered the
minimum. When no rung holds, the int8 backend is refused: the record says why, the export exits
with status 3, and the server's start check refuses QUOTES_EMBEDDING_BACKEND=onnx-int8 with that
reason.

The export is deterministic for a given CPU (quantisation is arithmetic on the weights; ONNX
Runtime's results do not depend on its thread count), atomic (written in a temporary directory,
then renamed into place, then the record replaced) and idempotent (skipped while the record matches
the weights, the preset and `check_digest`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import REPO_ROOT
from .embed import Embedder, normalise
from .encoders import OnnxInt8
from .model_files import (
    CHECKSUMS,
    ONNX_RECORD,
    ONNX_RECORD_FORMAT,
    QUANTIZATIONS,
    TORCH_INSTEAD,
    ModelError,
    OnnxExport,
    cpu_name,
    model_revision,
    onnx_export_problem,
    quantization_for_cpu,
    sha256_file,
    verify_model,
)

INT8_MIN_COSINE = 0.98
# How many of the most sensitive MatMuls each rung keeps in fp32 (of 48; the first rung must be 0).
# It stops at a third of them: each one kept in fp32 gives back part of what int8 gains in speed.
INT8_LADDER: tuple[int, ...] = (0, 1, 2, 4, 8, 16)
INT8_OPERATORS: tuple[str, ...] = ("MatMul",)
# Initializers this large are kept in a file beside the model: in practice the fp32 word-embedding
# table, 47 of the file's 59 MB (see externalise_tables).
EXTERNAL_DATA_MIN_BYTES = 1 << 20
# What decides the statements, and how they are checked: a change to any of these re-exports.
_CHECK_SOURCES = ("extract", "records.py", "speakers.py", "corpus.py", "nlp.py", "onnx_export.py", "encoders.py")


class Int8Refused(ModelError):
    """No rung of the ladder keeps the promise on this CPU; the message says to serve with torch."""


@dataclass(frozen=True, slots=True)
class Int8Check:
    statements: tuple[str, ...]
    min_cosine: float
    ladder: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Rung:
    kept_fp32: tuple[str, ...]  # in graph order
    min_cosine: float
    mean_cosine: float
    worst: str  # the statement at min_cosine


@dataclass(frozen=True, slots=True)
class Int8Result:
    file: Path | None  # the model of the last rung tried, which holds; None when no rung held
    settings: dict[str, Any]  # the preset's quantisation settings as applied
    tried: tuple[Rung, ...]
    data: Path | None = None  # its large tables, beside it (externalise_tables), if it has any


Exporter = Callable[[Path, Path, str, Int8Check], Int8Result]


def corpus_statements(corpus_dir: Path, speakers_file: Path | None) -> list[str]:
    """Every mention the extractor finds in the corpus (kept by the store or not) and each of its
    sentences, normalised as the Embedder normalises them."""
    from .corpus import load_corpus
    from .extract import extract_article
    from .nlp import load_nlp
    from .speakers import SpeakerRegistry

    nlp = load_nlp()
    registry = SpeakerRegistry()
    if speakers_file is not None:
        registry.load_file(speakers_file)
    texts: set[str] = set()
    for article in load_corpus(corpus_dir):
        for mention in extract_article(article, registry, nlp).mentions:
            texts.add(normalise(mention.text))
            texts.update(normalise(s.text) for s in nlp(mention.text).sents)
    return sorted(t for t in texts if t)


def check_digest(corpus_dir: Path, speakers_file: Path | None, min_cosine: float, ladder: tuple[int, ...]) -> str:
    """What the agreement is checked against and how: the corpus and the code that extracts its
    statements, the threshold, the ladder, the operators quantised."""
    from .build import fingerprint

    salt = json.dumps([min_cosine, list(ladder), list(INT8_OPERATORS)])
    return fingerprint(corpus_dir, speakers_file, salt, sources=_CHECK_SOURCES)[:16]


def _default_speakers(corpus_dir: Path) -> Path | None:
    candidate = corpus_dir / "speakers.json"
    return candidate if candidate.is_file() else None


def export_onnx(
    model_dir: Path,
    checksums: Path = CHECKSUMS,
    quantization: str | None = None,
    *,
    corpus_dir: Path | None = None,
    speakers_file: Path | None = None,
    min_cosine: float | None = None,
    ladder: tuple[int, ...] | None = None,
    exporter: Exporter | None = None,
) -> bool:
    """Export, check and keep the int8 model for this CPU. Returns False when it is already current.

    Raises Int8Refused (after recording the refusal, and removing any earlier int8 file) when no
    rung of the ladder keeps the promise, and again on every later call while nothing changed.
    `corpus_dir` defaults to the repository's corpus, `speakers_file` to its speakers.json.
    """
    quantization = quantization or quantization_for_cpu()
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"unknown int8 quantization {quantization!r} (one of {', '.join(QUANTIZATIONS)})")
    corpus_dir = corpus_dir or REPO_ROOT / "corpus"
    speakers_file = speakers_file or _default_speakers(corpus_dir)
    min_cosine = INT8_MIN_COSINE if min_cosine is None else min_cosine
    ladder = INT8_LADDER if ladder is None else ladder
    if not ladder or ladder[0] != 0 or list(ladder) != sorted(set(ladder)):
        raise ModelError(f"int8 ladder {ladder!r}: increasing counts of fp32 MatMuls, starting at 0")
    verify_model(model_dir, checksums)
    digest = check_digest(corpus_dir, speakers_file, min_cosine, ladder)
    onnx_dir = model_dir / "onnx"
    onnx_dir.mkdir(exist_ok=True)
    # Two installs at once (two `./run test` in one checkout) must not interleave their exports.
    with (onnx_dir / ".export.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = OnnxExport.read(model_dir)
        if _is_current(record, model_dir, checksums, quantization, digest):
            assert record is not None
            if record.refused is not None:
                raise Int8Refused(f"int8 ONNX backend refused: {record.refused}; {TORCH_INSTEAD}")
            return False
        for stale in onnx_dir.glob(".export-*"):  # left by an interrupted export (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=onnx_dir))
        try:
            spec = Int8Check(tuple(corpus_statements(corpus_dir, speakers_file)), min_cosine, ladder)
            with _quiet_export():
                result = (exporter or _export_int8)(model_dir, tmp, quantization, spec)
            written = _keep(model_dir, checksums, tmp, quantization, digest, spec, result)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if written.refused is not None:
        raise Int8Refused(f"int8 ONNX backend refused: {written.refused}; {TORCH_INSTEAD}")
    return True


def _is_current(record: OnnxExport | None, model_dir: Path, checksums: Path, quantization: str, digest: str) -> bool:
    if record is None or (record.quantization, record.check) != (quantization, digest):
        return False
    if record.refused is not None:
        return record.source_revision == model_revision(checksums)
    return onnx_export_problem(model_dir, checksums) is None


def _keep(
    model_dir: Path, checksums: Path, tmp: Path, quantization: str, digest: str, spec: Int8Check, result: Int8Result
) -> OnnxExport:
    """Move the chosen file into place and write the record (the record last: it is the commit)."""
    if not result.tried or (result.file is not None and result.tried[-1].min_cosine < spec.min_cosine):
        raise ModelError("int8 export: the exporter kept no rung or one below the threshold")
    onnx_dir = model_dir / "onnx"
    last = result.tried[-1]
    held = result.file is not None
    best = max(result.tried, key=lambda r: r.min_cosine)
    chosen = last if held else best
    kept_files: set[Path] = set()
    record: dict[str, Any] = {
        "format": ONNX_RECORD_FORMAT,
        "quantization": quantization,
        "source_revision": model_revision(checksums),
        "check": digest,
        "min_cosine_required": spec.min_cosine,
        "ladder": list(spec.ladder),
        "settings": result.settings,
        "file": None,
        "sha256": None,
        "data_file": None,
        "data_sha256": None,
        "kept_fp32": list(last.kept_fp32) if held else [],
        "agreement": {
            "statements": len(spec.statements),
            "min_cosine": round(chosen.min_cosine, 6),
            "mean_cosine": round(chosen.mean_cosine, 6),
            "worst": chosen.worst,
        },
        "tried": [
            {"kept_fp32": len(r.kept_fp32), "min_cosine": round(r.min_cosine, 6), "worst": r.worst}
            for r in result.tried
        ],
        "refused": None,
        "measured_on": cpu_name(),
        "made_with": _versions(),
    }
    if held:
        assert result.file is not None
        final = onnx_dir / result.file.name
        result.file.chmod(0o644)
        result.file.replace(final)
        record["file"] = final.relative_to(model_dir).as_posix()
        record["sha256"] = sha256_file(final)
        if result.data is not None:
            data = onnx_dir / result.data.name
            result.data.chmod(0o644)
            result.data.replace(data)
            record["data_file"] = data.relative_to(model_dir).as_posix()
            record["data_sha256"] = sha256_file(data)
            kept_files.add(data)
        kept_files.add(final)
    else:
        record["refused"] = (
            f"no rung of the {quantization} ladder (0 to {spec.ladder[-1]} MatMuls kept in fp32) reaches cosine "
            f"{spec.min_cosine} with torch fp32 on all {len(spec.statements)} corpus statements (best "
            f"{best.min_cosine:.4f}, with {len(best.kept_fp32)} kept, on {best.worst!r})"
        )
    staged = tmp / "qint8.json"
    staged.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    staged.chmod(0o644)
    staged.replace(model_dir / ONNX_RECORD)
    for old in onnx_dir.glob("model_qint8_*"):  # another CPU's export, or one now refused
        if old not in kept_files:
            old.unlink()
    written = OnnxExport.read(model_dir)
    assert written is not None
    return written


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """The exporters' warnings and log lines are about their own internals, not about anything to fix:
    the legacy TorchScript ONNX exporter's deprecation, tracer warnings on constant masks, optimum's
    advice to save a model that is being saved, ONNX Runtime's advice to pre-process before
    quantising. Silenced here only, so they neither clutter scripts/install.sh nor turn into errors
    under pytest's filterwarnings=error."""
    # First: transformers and optimum set their loggers' levels when first imported or first used.
    import optimum.onnxruntime  # noqa: F401
    import transformers  # noqa: F401
    from optimum.utils.logging import get_logger
    from torch.jit import TracerWarning

    get_logger()  # optimum's root logger is configured by its first get_logger, else mid-export

    loggers = [logging.getLogger(n) for n in ("sentence_transformers", "transformers", "optimum", "root")]
    levels = [lg.level for lg in loggers]

    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning, UserWarning, TracerWarning):
            warnings.simplefilter("ignore", category)
        try:
            for lg in loggers:
                lg.setLevel(logging.ERROR)
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _export_int8(model_dir: Path, into: Path, quantization: str, check: Int8Check) -> Int8Result:
    """Climb the ladder in `into`: quantise, measure against torch, stop at the first rung that holds.

    The fp32 export is sentence-transformers' own path (loading with backend="onnx" exports the local
    weights with optimum, offline, into optimum's temporary directory); each rung is optimum's
    ORTQuantizer with the preset's config, as sentence-transformers' export_dynamic_quantized_onnx_model
    uses it, plus the nodes to keep in fp32.
    """
    import onnx
    from optimum.onnxruntime import ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig
    from sentence_transformers import SentenceTransformer

    # The torch reference as the service computes it (not load_embedder: its models live as long as the process).
    torch_model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
    reference = Embedder(torch_model, "reference", cache_size=0).encode(list(check.statements), batch_size=64)
    del torch_model
    # export=True: never pick up an ONNX file already in the directory (e.g. a previous int8 one).
    fp32 = SentenceTransformer(
        str(model_dir),
        backend="onnx",
        device="cpu",
        local_files_only=True,
        model_kwargs={"export": True, "provider": "CPUExecutionProvider"},
    )
    try:
        quantizer = ORTQuantizer.from_pretrained(fp32.transformers_model)
        fp32_path = Path(quantizer.onnx_model_path)
        graph = onnx.load(str(fp32_path), load_external_data=False).graph
        matmuls = [n.name for n in graph.node if n.op_type == "MatMul"]
        settings: dict[str, Any] = {}
        tried: list[Rung] = []
        ranking: list[str] = []
        for count in check.ladder:
            if count > len(matmuls):
                break
            chosen = set(ranking[:count])
            kept = tuple(n for n in matmuls if n in chosen)
            config = getattr(AutoQuantizationConfig, quantization)(
                is_static=False, nodes_to_exclude=list(kept), operators_to_quantize=list(INT8_OPERATORS)
            )
            settings = {
                "weights": config.weights_dtype.name,
                "activations": config.activations_dtype.name,
                "per_channel": config.per_channel,
                "reduce_range": config.reduce_range,
                "weights_symmetric": config.weights_symmetric,
                "activations_symmetric": config.activations_symmetric,
                "operators": list(config.operators_to_quantize),
            }
            out = quantizer.quantize(config, into / f"rung-{count}", file_suffix=f"qint8_{quantization}")
            path = out / f"{fp32_path.stem}_qint8_{quantization}.onnx"
            _check_kept_float(path, kept)
            data = externalise_tables(path)  # before the check: what is measured is what is served
            rung = _agreement(model_dir, path, check.statements, reference, kept)
            tried.append(rung)
            if rung.min_cosine >= check.min_cosine:
                return Int8Result(path, settings, tuple(tried), data)
            if not ranking:
                ranking = matmul_sensitivity(fp32_path, path, fp32, check.statements)
        return Int8Result(None, settings, tuple(tried))
    finally:
        # optimum keeps the fp32 export in a TemporaryDirectory owned by the model; removing it now
        # frees ~90 MB of /tmp and avoids the ResourceWarning of an implicit cleanup at exit.
        tempdir = getattr(fp32.transformers_model, "_model_save_dir_tempdirectory_instance", None)
        if tempdir is not None:
            tempdir.cleanup()


def externalise_tables(path: Path) -> Path | None:
    """Move the model's large initializers into `<model file>.data` beside it; that file, or None.

    ONNX Runtime maps an external data file into memory instead of copying it into each session: a
    worker then holds only the pages of the word-embedding table that its texts' tokens touched,
    shared with every other worker through the page cache, instead of a private copy of all 47 MB
    (bench/bench_startup.py measures the resident memory). Same tensors, same graph: the vectors
    are bit for bit those of the single file (tests/test_onnx_export.py), and the agreement with
    torch is measured on this form, the one served.
    """
    import onnx

    model = onnx.load(str(path))
    if not any(len(t.raw_data) >= EXTERNAL_DATA_MIN_BYTES for t in model.graph.initializer):
        return None
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=EXTERNAL_DATA_MIN_BYTES,
    )
    return data


def _check_kept_float(path: Path, kept: tuple[str, ...]) -> None:
    """A renamed node would silently be quantised: check that each one kept is still a float MatMul."""
    import onnx

    floats = {n.name for n in onnx.load(str(path), load_external_data=False).graph.node if n.op_type == "MatMul"}
    lost = sorted(set(kept) - floats)
    if lost:
        raise ModelError(f"int8 export: no float MatMul named {', '.join(lost)} in {path.name}")


def _agreement(
    model_dir: Path, path: Path, statements: tuple[str, ...], reference: np.ndarray, kept: tuple[str, ...]
) -> Rung:
    """Cosine between the candidate's vectors, computed as the service computes them, and torch's."""
    model = OnnxInt8(model_dir, path.relative_to(model_dir).as_posix())
    vectors = Embedder(model, "candidate", backend="onnx-int8", cache_size=0).encode(list(statements))
    cosines = np.einsum("ij,ij->i", reference, vectors)
    worst = int(np.argmin(cosines))
    return Rung(kept, float(cosines[worst]), float(cosines.mean()), statements[worst])


def matmul_sensitivity(fp32_path: Path, int8_path: Path, model: Any, statements: tuple[str, ...]) -> list[str]:
    """The MatMuls of the fp32 graph, the most sensitive to quantisation first.

    Each one's error is measured on its own: the fp32 model is run with every MatMul's inputs and
    output exposed, and each MatMul's int8 subgraph (cut out of `int8_path`: the dynamic
    quantisation of its inputs, the integer product, the rescale) is run by ONNX Runtime on those
    same fp32 inputs. Error = |int8 output - fp32 output| / |fp32 output|, summed over statements.
    """
    import onnx
    import onnxruntime as ort
    from onnx.utils import Extractor

    fp32 = onnx.load(str(fp32_path))
    weights = {i.name for i in fp32.graph.initializer}
    matmuls = [n for n in fp32.graph.node if n.op_type == "MatMul"]
    inputs = {n.name: [t for t in n.input if t not in weights] for n in matmuls}
    probed = list(dict.fromkeys(t for n in matmuls for t in (*inputs[n.name], n.output[0])))
    fp32.graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in probed)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    full = ort.InferenceSession(fp32.SerializeToString(), options, providers=providers)
    feeds = {i.name for i in full.get_inputs()}
    extractor = Extractor(onnx.load(str(int8_path)))
    alone = {
        n.name: ort.InferenceSession(
            extractor.extract_model(inputs[n.name], [n.output[0]]).SerializeToString(), options, providers=providers
        )
        for n in matmuls
    }
    errors = dict.fromkeys(alone, 0.0)
    for text in statements:
        encoded = model.tokenizer([text], truncation=True, max_length=model.max_seq_length, return_tensors="np")
        feed = {k: v.astype(np.int64) for k, v in encoded.items() if k in feeds}
        values = dict(zip(probed, full.run(probed, feed), strict=True))
        for n in matmuls:
            want = values[n.output[0]]
            got = alone[n.name].run(None, {t: values[t] for t in inputs[n.name]})[0]
            errors[n.name] += float(np.linalg.norm(got - want) / max(float(np.linalg.norm(want)), 1e-12))
    order = [n.name for n in matmuls]
    return sorted(order, key=lambda name: (-errors[name], order.index(name)))


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("sentence-transformers", "optimum-onnx", "onnxruntime", "torch"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "?"
    return out
