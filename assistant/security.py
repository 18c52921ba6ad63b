"""Who may call the service, and how: API tokens kept as hashes, a rate limit per caller, and no
changes sent by another site's page.

Tokens are configured in ``API_TOKENS`` either in plain or as ``sha256:<hex digest>``, so the
secret itself need not be stored anywhere the service runs; a caller's token is hashed and
compared with the configured hashes. That hash also owns the caller's conversations. Tokens are
long random strings (``assistant new-token`` makes one), so a fast hash is enough.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable

import click
from flask import Flask, Response, current_app, g, request
from flask_limiter import Limit, Limiter
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import ApiError

#: A configured token given by its hash instead of in plain.
HASHED = re.compile(r"sha256:([0-9a-fA-F]{64})")
#: Methods that change something: a browser may send them only from this service's own pages.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: ``Sec-Fetch-Site`` of a request made by a page of this origin, or by the person themselves.
OWN_SITE = frozenset({"same-origin", "none"})
DEFAULTS = {
    # Per API token, over all API requests together; per client address where the service takes requests without tokens.
    # A notebook that plays a few hundred conversations in a loop (2-4 requests each, in well under a minute) stays
    # below it; what costs much (progress streams, runs, large inputs) has caps and limits of its own.
    "RATELIMIT_DEFAULT": "3000 per minute",
    # memory:// counts in each worker process apart; a redis:// URL shares the counts between all machines.
    "RATELIMIT_STORAGE_URI": "memory://",
    # When that Redis is unreachable, each process counts on its own until it answers again, rather than failing.
    "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
    "RATELIMIT_HEADERS_ENABLED": True,
    # How many proxies in front of the service set X-Forwarded-For, -Proto and -Host; their word is taken.
    "TRUSTED_PROXIES": 0,
}


def token_hash(token: str) -> str:
    """The sha256 hex digest a token is known by, and its conversations are owned by."""
    return hashlib.sha256(token.encode()).hexdigest()


def _configured_hashes(entries: Iterable[str]) -> list[str]:
    """The hash of every configured token: ``sha256:`` entries as they are, plain ones hashed here."""
    return [hashed[1].lower() if (hashed := HASHED.fullmatch(entry)) else token_hash(entry) for entry in entries]


def _token_owner() -> str | None:
    """The hash of the request's bearer token when it is a configured one, else None; worked out once per request."""
    if "token_owner" not in g:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        presented = token_hash(token) if scheme.lower() == "bearer" and token else None
        known = _configured_hashes(current_app.config["API_TOKENS"])
        # Compare with every hash, so the time taken says nothing about which one nearly matched.
        matched = presented is not None and any([hmac.compare_digest(presented, each) for each in known])
        g.token_owner = presented if matched else None
    return g.token_owner


def authenticate() -> str | None:
    """The owner an API request acts for: None where no tokens are configured, else its token's hash (or 401)."""
    if not current_app.config["API_TOKENS"]:
        return None
    owner = _token_owner()
    if owner is None:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> with a token this service knows",
                       headers={"WWW-Authenticate": "Bearer"})
    return owner


def caller() -> str:
    """Whose allowance a request spends: its token's, or its address's when it carries no valid token."""
    owner = _token_owner() if current_app.config["API_TOKENS"] else None
    return f"token:{owner}" if owner else f"address:{request.remote_addr}"


def _refuse_cross_site() -> None:
    """Refuse a change that another site's page makes the browser send (cross-site request forgery).

    Browsers say where a request comes from (``Sec-Fetch-Site``, older ones only ``Origin``);
    API clients, Slack and Keras's RemoteMonitor send neither and are not affected.
    """
    if request.method not in UNSAFE_METHODS:
        return
    site, origin = request.headers.get("Sec-Fetch-Site"), request.headers.get("Origin")
    own = site in OWN_SITE if site is not None else origin is None or f"{origin}/" == request.host_url
    if not own:
        raise ApiError(403, "cross_site_request", "this service takes changes only from its own pages and from API "
                                                  "clients, not from another site's page")


def _harden(response: Response) -> Response:
    """Browsers must not guess a response's type, nor tell other sites which conversation linked to them."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


@click.command("new-token")
def new_token_command() -> None:
    """Make an API token: the token for its user, and the entry for API_TOKENS that holds only its hash."""
    token = secrets.token_urlsafe(32)
    click.echo(f"token, for its user:               {token}")
    click.echo(f"entry, for ASSISTANT_API_TOKENS:   sha256:{token_hash(token)}")


def init_app(app: Flask) -> None:
    """Check the configured tokens, and add the rate limit, the cross-site check and the proxy settings."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    for number, entry in enumerate(app.config["API_TOKENS"], 1):
        if entry.startswith("sha256:") and not HASHED.fullmatch(entry):
            raise ValueError(f"API_TOKENS entry {number} starts with sha256: but is not followed by 64 hex digits")
    if app.config["TRUSTED_PROXIES"]:
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.before_request(_refuse_cross_site)
    # One count per caller across the whole API: Flask-Limiter's default limits count each endpoint apart.
    per_caller = Limit(limit_provider=lambda: current_app.config["RATELIMIT_DEFAULT"], scope="api", shared=True,
                       finalized=False)
    Limiter(caller, app=app, default_limits=[per_caller], default_limits_exempt_when=lambda: request.blueprint != "api")
    app.after_request(_harden)
    app.cli.add_command(new_token_command)
