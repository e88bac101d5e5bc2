"""What a process that only serves with onnx-int8 leaves unimported, besides torch
(`service.encoders.keep_torch_out`): spaCy's command line."""

from __future__ import annotations

import sys
import types
from typing import Any

# What importing spaCy's command line brings in, and a serving process therefore does without.
SPACY_CLI_MODULES = ("typer", "weasel", "rich", "requests")


def _no_cli(*_: Any, **__: Any) -> None:
    raise RuntimeError("spaCy's command line is not loaded in a serving process (service.lean)")


def keep_spacy_cli_out() -> None:
    """Give spaCy a stand-in for its command line, before anything imports spaCy.

    `import spacy` imports `spacy.cli` for one name (`spacy.info`), and with it every spaCy
    command and their libraries (typer, rich, requests, weasel, …): 360 modules and 19 MiB in each
    process, the master's and every worker's (measured: `import spacy` and loading the pipeline,
    with and without). A serving process runs no spaCy command, and no other spaCy module imports
    from `spacy.cli`; tests/test_package.py serves every endpoint with the stand-in in place. Does
    nothing once spaCy is imported.
    """
    if "spacy" in sys.modules or "spacy.cli" in sys.modules:
        return
    cli = types.ModuleType("spacy.cli", "spaCy's command line: not loaded in a serving process")
    info = types.ModuleType("spacy.cli.info")
    info.info = _no_cli  # type: ignore[attr-defined]
    cli.info = info  # type: ignore[attr-defined]
    sys.modules["spacy.cli"] = cli
    sys.modules["spacy.cli.info"] = info
