"""gunicorn's settings for ``gunicorn --config deploy/gunicorn.conf.py``; they live in assistant.serving,
which ``assistant serve`` uses too, so that an installed package needs no file from the checkout."""
from assistant.serving import *  # noqa: F401,F403
