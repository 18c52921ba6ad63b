"""A stand-in for Slack's Web API and file servers: a real HTTP server on a loopback port that records every call.

After bolt-python's ``tests/mock_web_api_server``: the bot under test talks to it over HTTP
with its ordinary ``WebClient``, and tests assert on what it received.
"""
from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

TOKEN = "xoxb-test-token"
TEAM = "T0TEAM"
BOT_USER = "U0BOT"
BOT_ID = "B0BOT"


def signed(body: str, secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request with: v0=HMAC-SHA256(secret, "v0:<timestamp>:<body>")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Call:
    """One request the bot made: the Web API method (or the path outside ``/api/``), its arguments, the answer."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    body: bytes = b""
    response: dict[str, Any] | None = None
    #: When it was answered (``time.monotonic()``).
    at: float = 0.0


@dataclass
class SharedFile:
    content: bytes
    content_type: str = "text/plain"
    #: Seconds the download takes before the first byte: a slow file server.
    delay: float = 0.0


@dataclass
class SlackWebApi:
    """Start with ``start()``; ``url`` is the Web API base URL to configure, ``calls`` what arrived."""

    calls: list[Call] = field(default_factory=list)
    files: dict[str, SharedFile] = field(default_factory=dict)
    #: The bot's messages as a channel shows them now, by ts: posted, then changed by chat.update.
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    def start(self) -> SlackWebApi:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.root = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = f"{self.root}/api/"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def share(self, name: str, content: bytes, *, delay: float = 0.0, **file: Any) -> dict[str, Any]:
        """Serve ``content`` as a file shared in Slack (after ``delay`` seconds); returns the file object an event carries."""
        self.files[name] = SharedFile(content, delay=delay)
        return {"id": f"F{len(self.files)}", "name": name, "size": len(content), "mimetype": "text/plain",
                "url_private": f"{self.root}/files-pri/{TEAM}/{name}",
                "url_private_download": f"{self.root}/files-pri/{TEAM}/download/{name}", **file}

    def received(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 15) -> list[Call]:
        """The first ``count`` calls of ``method``, waiting for them to arrive; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(found := [c for c in self.calls if c.method == method]) < count:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{len(found)} of {count} {method} calls came: {[c.method for c in self.calls]}"
                self._lock.wait(remaining)
        return found[:count]

    def record(self, call: Call) -> None:
        call.at = time.monotonic()
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def respond(self, call: Call) -> tuple[int, str, bytes]:
        """Status, content type and body Slack would answer ``call`` with."""
        if call.method.startswith("files-pri/"):
            shared = self.files.get(call.method.rpartition("/")[2])
            if shared is None:
                return 404, "text/plain", b"not found"
            if call.headers.get("authorization") != f"Bearer {TOKEN}":  # Slack shows a sign-in page
                return 200, "text/html", b"<html>Sign in to Slack</html>"
            time.sleep(shared.delay)
            return 200, shared.content_type, shared.content
        if call.method.startswith("upload/"):
            return 200, "text/plain", b"OK - uploaded"
        with self._lock:  # the messages change under concurrent calls
            call.response = (self._answer(call) if call.headers.get("authorization") == f"Bearer {TOKEN}"
                             else {"ok": False, "error": "invalid_auth"})
        return 200, "application/json; charset=utf-8", json.dumps(call.response).encode()

    def _answer(self, call: Call) -> dict[str, Any]:
        args = call.args
        if call.method == "auth.test":
            return {"ok": True, "team_id": TEAM, "user_id": BOT_USER, "bot_id": BOT_ID, "team": "Test",
                    "user": "troubleshooter", "url": "https://test.slack.com/"}
        if call.method == "chat.postMessage":
            ts = f"1700000100.{next(self._ts):06d}"
            message = {"type": "message", "ts": ts, "text": args.get("text"), "thread_ts": args.get("thread_ts"),
                       "blocks": args.get("blocks") or [], "user": BOT_USER, "bot_id": BOT_ID}
            self.messages[ts] = {**message, "channel": args["channel"]}
            return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}
        if call.method == "chat.update":
            if args["ts"] in self.messages:
                self.messages[args["ts"]].update(text=args.get("text"), blocks=args.get("blocks") or [])
            return {"ok": True, "channel": args["channel"], "ts": args["ts"], "text": args.get("text")}
        if call.method == "conversations.replies":  # the bot's own messages in the thread, oldest first
            found = [m for m in self.messages.values()
                     if m["channel"] == args["channel"] and m.get("thread_ts") == args["ts"]]
            return {"ok": True, "has_more": False, "messages": sorted(found, key=lambda m: m["ts"])}
        if call.method == "views.open":
            view = json.loads(args["view"]) if isinstance(args.get("view"), str) else args.get("view")
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts)}"}}
        if call.method == "files.getUploadURLExternal":
            file_id = f"FUP{next(self._ts)}"
            return {"ok": True, "file_id": file_id, "upload_url": f"{self.root}/upload/{file_id}"}
        if call.method == "files.completeUploadExternal":
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in json.loads(args["files"])]}
        return {"ok": True}


def _handler(api: SlackWebApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            url = urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = url.path.strip("/")
            method = path.removeprefix("api/")
            args: dict[str, Any] = dict(parse_qsl(url.query))
            if path.startswith("api/") and body:
                if self.headers.get_content_type() == "application/json":
                    args.update(json.loads(body))
                else:
                    args.update(parse_qsl(body.decode()))
            if isinstance(args.get("blocks"), str):
                args["blocks"] = json.loads(args["blocks"])
            call = Call(method, args, {k.lower(): v for k, v in self.headers.items()}, body)
            status, content_type, answer = api.respond(call)
            api.record(call)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the calls are recorded instead."""

    return Handler
