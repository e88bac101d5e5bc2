"""The int8 ONNX export: every preset keeps the accuracy promise or is refused clearly, on any CPU.

Each preset is forced in its own linked copy of the model folder and exported for real (optimum,
ONNX Runtime, the ladder) on the CPU running the tests; the refusal is forced with a threshold no
int8 model can reach. The exports are shared by the tests (session fixtures): the file takes 2.5
to 4 minutes on the shared 2-core development machine, nearly all of it in the four real exports
(the u8 x s8 presets climb five rungs on a CPU without VNNI). Atomicity and skipping use a fake
exporter.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service import cli, onnx_export
from service.config import ConfigError, Settings
from service.embed import Embedder, load_embedder, normalise
from service.model_files import ONNX_RECORD, ModelError, OnnxExport, linked_model_copy, onnx_export_problem
from service.model_files import quantization_for_cpu as cpu_preset
from service.onnx_export import (
    INT8_LADDER,
    INT8_MIN_COSINE,
    Int8Check,
    Int8Refused,
    Int8Result,
    Rung,
    corpus_statements,
    export_onnx,
)
from tests.conftest import CORPUS, copy_corpus

PRESETS = ("avx2", "avx512", "avx512_vnni")


def _raw(model_dir: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((model_dir / ONNX_RECORD).read_text(encoding="utf-8"))
    return record


def _export(model_dir: Path, **kwargs: Any) -> str | None:
    """Export; the refusal's message, or None when the int8 model was kept."""
    try:
        export_onnx(model_dir, **kwargs)
    except Int8Refused as exc:
        return str(exc)
    return None


@pytest.fixture(scope="session")
def forced(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str | None]]:
    """Each preset exported in its own model folder: (folder, refusal or None)."""
    out = {}
    for preset in PRESETS:
        model = linked_model_copy(settings.model_dir, tmp_path_factory.mktemp(preset) / "m")
        out[preset] = (model, _export(model, quantization=preset))
    return out


@pytest.fixture(scope="session")
def refused(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This CPU's preset held to cosine 1.0, which no int8 model reaches: two rungs, then refused."""
    model = linked_model_copy(settings.model_dir, tmp_path_factory.mktemp("refused") / "m")
    refusal = _export(model, min_cosine=1.0, ladder=(0, 1))
    assert refusal is not None, "an int8 model reached cosine 1.0 on every statement"
    return model, refusal


# -- every preset, whatever the CPU ----------------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_keeps_the_promise_or_refuses_clearly(
    preset: str,
    forced: dict[str, tuple[Path, str | None]],
    embedder: Embedder,
    statements: list[str],
) -> None:
    model, refusal = forced[preset]
    record = OnnxExport.read(model)
    raw = _raw(model)
    assert record is not None and record.quantization == preset
    tried = [r["min_cosine"] for r in raw["tried"]]
    # The ladder stops at the first rung that holds, in its order; each rung keeps more in fp32.
    assert all(c < INT8_MIN_COSINE for c in tried[:-1]), tried
    assert [r["kept_fp32"] for r in raw["tried"]] == list(INT8_LADDER[: len(tried)])
    if refusal is None:
        assert tried[-1] >= INT8_MIN_COSINE and len(record.kept_fp32) == INT8_LADDER[len(tried) - 1]
        assert onnx_export_problem(model) is None
        # The word-embedding table (30,522 x 384 fp32) is mapped from its own file, not copied.
        assert record.data_file is not None and (model / record.data_file).stat().st_size >= 30_522 * 384 * 4
        int8 = load_embedder(model, backend="onnx-int8")
        assert int8.export == record and int8.info["quantization"] == preset
        maps = Path("/proc/self/maps")
        if maps.exists():  # Linux: ONNX Runtime maps the file rather than reading it into the session
            assert str((model / record.data_file).resolve()) in maps.read_text(encoding="utf-8")
        cosines = np.einsum("ij,ij->i", embedder.encode(statements, batch_size=64), int8.encode(statements))
        worst = int(np.argmin(cosines))
        assert cosines.min() >= INT8_MIN_COSINE, (preset, float(cosines.min()), statements[worst])
        assert cosines.min() >= record.min_cosine - 1e-6  # the export measured this, on more statements
    else:
        assert len(tried) == len(INT8_LADDER) and max(tried) < INT8_MIN_COSINE  # the whole ladder was climbed
        assert "\n" not in refusal and "QUOTES_EMBEDDING_BACKEND=torch" in refusal
        assert record.refused is not None and record.file is None and record.data_file is None
        assert not list((model / "onnx").glob("model_qint8_*"))


def test_the_export_checks_every_statement_the_store_keeps(statements: list[str]) -> None:
    checked = corpus_statements(CORPUS, CORPUS / "speakers.json")
    assert {normalise(s) for s in statements} <= set(checked)


# -- refusal ---------------------------------------------------------------------------------------


def test_a_refusal_is_one_line_that_says_why_and_what_to_use(refused: tuple[Path, str]) -> None:
    model, refusal = refused
    assert "\n" not in refusal
    assert refusal.startswith("int8 ONNX backend refused: no rung of the")
    assert "cosine 1.0" in refusal and "corpus statements" in refusal
    assert refusal.endswith("use QUOTES_EMBEDDING_BACKEND=torch (the default) instead")
    raw = _raw(model)
    assert raw["file"] is None and raw["refused"] in refusal
    assert [r["kept_fp32"] for r in raw["tried"]] == [0, 1]
    assert all(r["min_cosine"] < 1.0 for r in raw["tried"])
    assert not list((model / "onnx").glob("*.onnx")) and not list((model / "onnx").glob(".export-*"))


def test_the_start_check_and_the_loader_keep_refusing(refused: tuple[Path, str], settings: Settings) -> None:
    model, _ = refused
    reason = _raw(model)["refused"]
    problem = onnx_export_problem(model)
    assert problem is not None and reason in problem and "QUOTES_EMBEDDING_BACKEND=torch" in problem
    int8 = Settings.from_env({"QUOTES_MODEL_DIR": str(model), "QUOTES_EMBEDDING_BACKEND": "onnx-int8"})
    with pytest.raises(ConfigError, match="QUOTES_EMBEDDING_BACKEND=onnx-int8: the int8 ONNX backend was refused"):
        int8.check_start()
    with pytest.raises(ModelError, match="onnx-int8: the int8 ONNX backend was refused at export on "):
        load_embedder(model, backend="onnx-int8")
    # torch needs no int8 export: the same model folder starts with the default backend.
    Settings.from_env({"QUOTES_MODEL_DIR": str(model), "QUOTES_STORE_PATH": str(settings.store_path)}).check_start()


def test_a_refusal_is_not_redone_and_the_command_exits_3(
    refused: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model, refusal = refused
    before = (model / ONNX_RECORD).read_bytes()
    calls: list[str] = []
    with pytest.raises(Int8Refused) as again:
        export_onnx(model, min_cosine=1.0, ladder=(0, 1), exporter=_fake_exporter(calls))
    assert str(again.value) == refusal and calls == [] and (model / ONNX_RECORD).read_bytes() == before

    # The command line (as scripts/install.sh runs it): one line on stderr, status 3.
    monkeypatch.setattr(onnx_export, "INT8_MIN_COSINE", 1.0)
    monkeypatch.setattr(onnx_export, "INT8_LADDER", (0, 1))
    monkeypatch.setenv("QUOTES_MODEL_DIR", str(model))
    capsys.readouterr()
    assert cli.main(["model", "export-onnx"]) == 3
    err = capsys.readouterr().err
    assert err == f"error: {refusal}\n"


# -- idempotent, atomic ----------------------------------------------------------------------------


def test_export_is_idempotent(settings: Settings, onnx_embedder: Embedder) -> None:
    record = OnnxExport.read(settings.model_dir)
    assert record is not None and record.quantization == cpu_preset() and record.file is not None
    path = settings.model_dir / record.file
    before = (path.stat().st_mtime_ns, (settings.model_dir / ONNX_RECORD).read_bytes())
    assert export_onnx(settings.model_dir) is False
    assert (path.stat().st_mtime_ns, (settings.model_dir / ONNX_RECORD).read_bytes()) == before
    assert onnx_export_problem(settings.model_dir) is None


def _fake_exporter(
    calls: list[str], fail: bool = False, cosine: float = 0.99, data: bool = False
) -> onnx_export.Exporter:
    def export(model_dir: Path, into: Path, quantization: str, check: Int8Check) -> Int8Result:
        calls.append(quantization)
        out = into / f"model_qint8_{quantization}.onnx"
        out.write_bytes(b"half an onnx file" if fail else b"an onnx file")
        if fail:
            raise KeyboardInterrupt  # interrupted half-way
        tables = None
        if data:
            tables = out.with_name(out.name + ".data")
            tables.write_bytes(b"its tables")
        rung = Rung((), cosine, cosine, check.statements[0])
        held = cosine >= check.min_cosine
        return Int8Result(out if held else None, {"weights": "QUInt8"}, (rung,), tables if held else None)

    return export


def test_export_writes_atomically_and_skips_when_current(tmp_path: Path, settings: Settings) -> None:
    model = linked_model_copy(settings.model_dir, tmp_path / "m")
    corpus = copy_corpus(tmp_path / "corpus", drop=("001", "002", "003", "004"))  # one article: fast to extract
    export = partial(export_onnx, model, corpus_dir=corpus)
    calls: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        export(quantization="avx2", exporter=_fake_exporter(calls, fail=True))
    # Nothing half-written: no model file, no record, no temporary directory.
    assert sorted(p.name for p in (model / "onnx").iterdir()) == [".export.lock"]
    assert onnx_export_problem(model) is not None

    assert export(quantization="avx2", exporter=_fake_exporter(calls)) is True
    record = _raw(model)
    assert record["file"] == "onnx/model_qint8_avx2.onnx" and record["quantization"] == "avx2"
    assert record["agreement"]["min_cosine"] == 0.99
    assert record["agreement"]["statements"] == len(corpus_statements(corpus, corpus / "speakers.json")) > 0
    assert (model / record["file"]).read_bytes() == b"an onnx file"
    assert export(quantization="avx2", exporter=_fake_exporter(calls)) is False
    assert calls == ["avx2", "avx2"]  # the skipped call never reached the exporter

    # Another CPU's preset replaces the file; a corrupted file is exported again; so is one checked
    # against another threshold.
    assert export(quantization="avx512_vnni", exporter=_fake_exporter(calls)) is True
    assert sorted(p.name for p in (model / "onnx").glob("*.onnx")) == ["model_qint8_avx512_vnni.onnx"]
    (model / "onnx" / "model_qint8_avx512_vnni.onnx").write_bytes(b"bit rot")
    assert "fails its checksum" in (onnx_export_problem(model) or "")
    assert export(quantization="avx512_vnni", exporter=_fake_exporter(calls)) is True
    assert export(quantization="avx512_vnni", min_cosine=0.985, exporter=_fake_exporter(calls)) is True
    assert len(calls) == 5

    # A refusal removes the file that was kept before: it must not be served any more.
    with pytest.raises(Int8Refused, match=r"best 0\.9700"):
        export(quantization="avx512_vnni", exporter=_fake_exporter(calls, cosine=0.97))
    assert not list((model / "onnx").glob("*.onnx")) and _raw(model)["file"] is None


def test_the_tables_file_is_kept_checked_and_replaced_with_its_model(tmp_path: Path, settings: Settings) -> None:
    model = linked_model_copy(settings.model_dir, tmp_path / "m")
    corpus = copy_corpus(tmp_path / "corpus", drop=("001", "002", "003", "004"))
    export = partial(export_onnx, model, corpus_dir=corpus)
    assert export(quantization="avx2", exporter=_fake_exporter([], data=True)) is True
    record = _raw(model)
    assert record["data_file"] == "onnx/model_qint8_avx2.onnx.data"
    assert (model / record["data_file"]).read_bytes() == b"its tables"
    assert onnx_export_problem(model) is None
    (model / record["data_file"]).write_bytes(b"bit rot")
    assert "model_qint8_avx2.onnx.data fails its checksum" in (onnx_export_problem(model) or "")
    (model / record["data_file"]).unlink()
    assert "model_qint8_avx2.onnx.data is missing" in (onnx_export_problem(model) or "")
    # Another preset's export, without tables: the old model goes, and its tables with it.
    assert export(quantization="avx512", exporter=_fake_exporter([])) is True
    assert _raw(model)["data_file"] is None
    assert sorted(p.name for p in (model / "onnx").glob("model_qint8_*")) == ["model_qint8_avx512.onnx"]
    assert export(quantization="avx2", exporter=_fake_exporter([], data=True)) is True
    assert sorted(p.name for p in (model / "onnx").glob("model_qint8_*")) == [
        "model_qint8_avx2.onnx",
        "model_qint8_avx2.onnx.data",
    ]
    # ONNX Runtime reads the tables only from beside the model: a link that leads elsewhere is refused
    # at the start check, not at the first worker's load.
    tables = model / "onnx" / "model_qint8_avx2.onnx.data"
    elsewhere = tmp_path / "elsewhere.data"
    elsewhere.write_bytes(tables.read_bytes())
    tables.unlink()
    tables.symlink_to(elsewhere)
    assert "leads outside" in (onnx_export_problem(model) or "")
    # A refusal removes both files.
    with pytest.raises(Int8Refused):
        export(quantization="avx2", min_cosine=0.995, exporter=_fake_exporter([], data=True))
    assert not list((model / "onnx").glob("model_qint8_*"))


def _gather_model(path: Path, rows: int) -> np.ndarray:
    """A one-node model (a lookup in a rows x 128 float table, as the word embeddings are), saved whole."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = np.random.default_rng(0).standard_normal((rows, 128)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["out"])],
        "lookup",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 128])],
        [numpy_helper.from_array(table, "table")],
    )
    # IR version 8: one this ONNX Runtime reads (onnx writes a newer one by default).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save_model(model, str(path))
    return table


def test_large_tables_move_beside_the_model_and_give_the_same_results(tmp_path: Path) -> None:
    import onnxruntime as ort

    ids = np.array([0, 7, 4095, 7], dtype=np.int64)
    small = tmp_path / "small.onnx"
    _gather_model(small, rows=16)  # 8 KiB: stays inside
    assert onnx_export.externalise_tables(small) is None and not list(tmp_path.glob("*.data"))

    model = tmp_path / "model.onnx"
    table = _gather_model(model, rows=4096)  # 2 MiB
    whole = model.stat().st_size
    data = onnx_export.externalise_tables(model)
    assert data == tmp_path / "model.onnx.data" and data.stat().st_size == table.nbytes
    assert whole > table.nbytes and model.stat().st_size < 1024
    for _ in range(2):  # done again on its own output, the data file is rewritten, not appended to
        (out,) = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})
        assert np.array_equal(out, table[ids])
        assert onnx_export.externalise_tables(model) == data and data.stat().st_size == table.nbytes


def test_a_ladder_must_start_with_every_matmul_in_int8(tmp_path: Path, settings: Settings) -> None:
    model = linked_model_copy(settings.model_dir, tmp_path / "m")
    for ladder in ((), (1, 2), (0, 4, 2)):
        with pytest.raises(ModelError, match="int8 ladder"):
            export_onnx(model, ladder=ladder, exporter=_fake_exporter([]))


@pytest.mark.parametrize(
    ("flags", "machine", "expected"),
    [
        ("fpu sse avx2 avx512f avx512bw avx512_vnni", "x86_64", "avx512_vnni"),
        ("fpu sse avx2 avx512f avx512bw", "x86_64", "avx512"),
        ("fpu sse avx2 avx_vnni", "x86_64", "avx2"),
        ("", "aarch64", "arm64"),
    ],
)
def test_quantization_follows_the_cpu_flags(tmp_path: Path, flags: str, machine: str, expected: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n", encoding="utf-8")
    assert cpu_preset(cpuinfo, machine) == expected
