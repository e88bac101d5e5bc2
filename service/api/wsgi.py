"""gunicorn entry point: `gunicorn service.api.wsgi:app` (the app is made in each worker)."""

from . import create_app

app = create_app()
