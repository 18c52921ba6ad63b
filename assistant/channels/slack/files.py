"""Files shared into a thread, downloaded with the bot token and turned into the inputs an API upload gives.

An API client names each upload's field; in Slack a file only has a name and its content,
so the kind is read from them: JSON with contract keys is a dataset summary (one with
``metrics``, ``dataset`` or ``training`` keys is read like an API request body), other JSON a
history; CSV with epoch, step or loss columns is a history and any other CSV a data sample;
other text is a console log.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from slack_sdk import WebClient

from ...evidence.inputs import normal_key
from ...evidence.metrics import decode_text, looks_binary
from ...kb import KnowledgeBase

#: CSV columns that mark a training history (CSVLogger, TensorBoard and Lightning exports).
HISTORY_COLUMNS = frozenset({"epoch", "step", "wall time"})
#: The parts of an API request a JSON file may hold.
REQUEST_FIELDS = ("metrics", "dataset", "training")


class Refused(Exception):
    """A shared file the bot does not read; the message says why, for the thread."""


def read_shared(kb: KnowledgeBase, client: WebClient, shared: Iterable[Mapping[str, Any]],
                limit: int) -> tuple[dict[str, Any], list[str]]:
    """``gather``'s inputs from the files of one message, and a sentence for each file left unread."""
    inputs: dict[str, Any] = {}
    notes: list[str] = []
    for file in shared:
        name = file.get("name") or file.get("title") or file.get("id", "a file")
        try:
            found = classify(kb, name, download(client, file, limit))
        except Refused as refusal:
            notes.append(f"I did not read `{name}`: {refusal}")
            continue
        again = sorted(found.keys() & inputs.keys() - {"metrics_filename"})
        if again:
            notes.append(f"I did not read `{name}`: this message already had a {' and '.join(again)} file.")
            continue
        inputs.update(found)
    return inputs, notes


def download(client: WebClient, file: Mapping[str, Any], limit: int) -> bytes:
    """The file's content, fetched with the bot token from Slack; ``Refused`` if too large or unreachable."""
    if "url_private" not in file:  # events may carry only the id of a file shared from elsewhere
        file = client.files_info(file=file["id"])["file"]
    if file.get("size", 0) > limit:
        raise Refused(_too_large(file["size"], limit))
    url = file.get("url_private_download") or file["url_private"]
    if not _is_slack(url, client.base_url):
        raise Refused("it is not stored on Slack, and the bot token goes nowhere else.")
    request = urllib.request.Request(url)
    request.add_unredirected_header("Authorization", f"Bearer {client.token}")  # not sent on to a redirect
    try:
        with urllib.request.urlopen(request, timeout=client.timeout) as response:
            if response.headers.get_content_type() == "text/html":
                raise Refused("Slack answered with a sign-in page; the app needs the files:read scope.")
            content = response.read(limit + 1)
    except (urllib.error.URLError, OSError) as error:
        raise Refused(f"it could not be downloaded ({error}).") from None
    if len(content) > limit:
        raise Refused(_too_large(len(content), limit))
    return content


def classify(kb: KnowledgeBase, name: str, content: bytes) -> dict[str, Any]:
    """The inputs a file stands for, by its content and name."""
    text = decode_text(content)  # UTF-8, UTF-16 (PowerShell's >) or Latin-1
    if looks_binary(text):
        raise Refused("it is not a text file; I read CSV, JSON and log files.")
    stripped = text.strip()
    if not stripped:
        raise Refused("it is empty.")
    if stripped[0] in "{[":
        try:
            value = json.loads(stripped)
        except ValueError as error:
            raise Refused(f"it is not valid JSON: {error}.") from None
        if isinstance(value, dict) and any(field in value for field in REQUEST_FIELDS):
            return {field: value[field] for field in REQUEST_FIELDS if field in value}
        if isinstance(value, dict) and not _is_history(value) and any(normal_key(key) in kb.vocabulary for key in value):
            return {"dataset": value}
        return {"metrics": value}
    if name.lower().endswith((".csv", ".tsv")) and not _is_history_csv(stripped):
        return {"sample": content}
    return {"metrics": text, "metrics_filename": name}


def _is_history(mapping: Mapping[str, Any]) -> bool:
    """Whether a JSON object is ``history.history`` (lists by metric) or a RemoteMonitor payload (an epoch)."""
    return "epoch" in mapping or any(isinstance(value, list) for value in mapping.values())


def _is_history_csv(csv_text: str) -> bool:
    """Whether a CSV's header names epochs, steps or losses, as a history has and a data sample does not."""
    header = csv_text.partition("\n")[0]
    names = {name.strip().strip('"').lower() for name in header.split(max(",;\t", key=header.count))}
    return bool(names & HISTORY_COLUMNS) or any(name.endswith("loss") for name in names)


def _is_slack(url: str, api_url: str) -> bool:
    """Whether ``url`` is on Slack (or on the configured Web API host, such as a proxy)."""
    host = urlparse(url).hostname or ""
    return host in ("slack.com", urlparse(api_url).hostname) or host.endswith(".slack.com")


def _too_large(size: int, limit: int) -> str:
    return (f"it is {size / 1e6:.1f} MB and I read files up to {limit / 1e6:.0f} MB. Share the CSVLogger file "
            "or the last epochs of the log instead.")
