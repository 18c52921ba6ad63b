"""gunicorn settings: threaded workers, so a slow client or a progress stream never blocks a worker."""
import os

bind = os.environ.get("ASSISTANT_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("ASSISTANT_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("ASSISTANT_THREADS", "8"))
timeout = 60
graceful_timeout = 30
keepalive = 5
accesslog = "-"
errorlog = "-"
