"""The embedding model: checked against its recorded checksums and loaded by path only."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.embed import Embedder
from service.model_files import CHECKSUMS, ModelError, read_checksums, verify_model


def test_the_materialised_model_matches_its_checksums(settings: object, embedder: Embedder) -> None:
    verify_model(settings.model_dir)  # type: ignore[attr-defined]
    vectors = embedder.encode(["Peskov said the talks were useful.", "The weather is mild."])
    assert vectors.shape == (2, 384)
    assert abs(float((vectors[0] ** 2).sum()) - 1.0) < 1e-4


def _small_copy(src: Path, dest: Path) -> Path:
    """The model folder without its 90 MB of weights, which no check below needs."""
    for name in read_checksums(CHECKSUMS):
        if name != "model.safetensors":
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, dest / name)
    return dest


def test_missing_model_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="python -m service model install"):
        verify_model(tmp_path / "absent")


def test_incomplete_or_corrupt_model_names_the_fix(tmp_path: Path, settings: object) -> None:
    model = _small_copy(settings.model_dir, tmp_path / "m")  # type: ignore[attr-defined]
    with pytest.raises(ModelError, match=r"incomplete \(model.safetensors is missing\).*model install"):
        verify_model(model)
    (model / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(ModelError, match=r"corrupt \(model.safetensors fails its checksum\)"):
        verify_model(model)
