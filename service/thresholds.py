"""The similarity thresholds matching labels by, as calibrated by eval/calibrate.py.

Its own module, free of the model and NLP imports, so configuration can check overrides against
the calibrated values before a server starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .records import Label

CALIBRATION_FILE = Path(__file__).resolve().parent / "calibration.json"


@dataclass(frozen=True, slots=True)
class Thresholds:
    paraphrase: float
    related: float
    min_words_paraphrase: int

    @classmethod
    def load(cls, path: Path = CALIBRATION_FILE) -> Thresholds:
        """The calibrated values written by eval/calibrate.py."""
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))["thresholds"]
            found = cls(float(raw["paraphrase"]), float(raw["related"]), int(raw["min_words_paraphrase"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RuntimeError(
                f"{path}: no usable thresholds ({exc}); regenerate with `python eval/calibrate.py`"
            ) from None
        if not 0.0 <= found.related <= found.paraphrase <= 1.0 or found.min_words_paraphrase < 1:
            raise RuntimeError(f"{path}: thresholds out of order: {found}")
        return found

    def label(self, similarity: float, words: int) -> Label:
        """The label on similarity alone (verbatim is decided on the words, before this)."""
        if similarity >= self.paraphrase and words >= self.min_words_paraphrase:
            return Label.PARAPHRASE
        if similarity >= self.related:
            return Label.RELATED
        return Label.NONE
