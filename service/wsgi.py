"""gunicorn entry point: `gunicorn service.wsgi:app` (gunicorn.conf.py; the app is made in each worker,
after fork).

Outside service.api on purpose: a worker that serves with onnx-int8 must keep torch and spaCy's
command line out before anything imports spaCy (service.encoders.keep_torch_out and
service.lean.keep_spacy_cli_out say why), and importing service.api does.
"""

from .config import Settings
from .encoders import keep_torch_out
from .lean import keep_spacy_cli_out

settings = Settings.from_env()
if settings.embedding_backend == "onnx-int8":
    keep_torch_out()
    keep_spacy_cli_out()

from .api import create_app  # noqa: E402 (after the decision above)
from .logs import configure_logging  # noqa: E402

configure_logging(settings)
app = create_app(settings)
