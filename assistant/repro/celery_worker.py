"""The Celery entry point: ``celery -A assistant.repro.celery_worker worker --pool=solo``.

The app is built from ``ASSISTANT_*`` environment variables, so set at least
``ASSISTANT_REPRO_BACKEND=celery``, ``ASSISTANT_DATABASE_URL`` and ``ASSISTANT_CELERY_BROKER_URL``.
"""
from assistant import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
