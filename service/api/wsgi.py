"""gunicorn entry point: `gunicorn service.api.wsgi:app` (the app is made in each worker, after fork)."""

from ..config import Settings
from ..logs import configure_logging
from . import create_app

settings = Settings.from_env()
configure_logging(settings)
app = create_app(settings)
