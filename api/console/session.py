"""Who is using the console, in which language, and whether a form really came from it.

The session is the API token itself (pasted once on the login page) kept in an HttpOnly,
SameSite=Strict cookie, Secure when served over HTTPS: every request verifies it again with
api/tokens.py, so an expired or forged token is refused exactly as the API refuses it, and
nothing is stored on the server. Forms carry a CSRF token derived from the session (HMAC of
the token with the API key): a page of another site can neither read it nor compute it, and
the SameSite cookie is a second fence. Before login, a random cookie plays that role
(double submit) so that nobody can log a victim into an attacker's session.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import Request

from api.app import state
from api.tokens import TokenError, principal_from
from dossiers.access import Principal

SESSION_COOKIE = "dmp_console"
PRELOGIN_COOKIE = "dmp_console_pre"
LANG_COOKIE = "dmp_lang"
LANGUAGES = ("fr", "en")
MAX_FORM = 2 * 1024 * 1024  # an edited message is the largest form (2 MiB)
HERE = Path(__file__).resolve().parent


class LoginRequired(Exception):
    """No valid session: the page sends the browser to the login form."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason or "login required")
        self.reason = reason


class Forbidden(Exception):
    """A valid session whose role may not open this page (403 page)."""


class CsrfError(Exception):
    """A POST without the form token of this session (403 page)."""


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    token: str
    csrf: str


def csrf_for(key: bytes, token: str) -> str:
    return hmac.new(key, b"console-csrf:" + token.encode("utf-8"), hashlib.sha256).hexdigest()


def current(request: Request) -> Session | None:
    """The session of this request, or None (no cookie, or a token no longer valid)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    key = state(request).key
    try:
        who = principal_from(token, key)
    except TokenError:
        return None
    return Session(who, token, csrf_for(key, token))


def require(request: Request, *kinds: str) -> Session:
    """The session, if its role is one of ``kinds`` (all roles but senders when empty)."""
    session = current(request)
    if session is None:
        raise LoginRequired("expired" if request.cookies.get(SESSION_COOKIE) else None)
    allowed = kinds or ("admin", "professional", "patient", "representative")
    if session.principal.kind not in allowed:
        raise Forbidden()
    return session


async def form(request: Request) -> dict[str, str]:
    """The url-encoded form of a POST (last value of each field), size-bounded."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise CsrfError("form too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise CsrfError("form not in utf-8") from None
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def check_csrf(session: Session, fields: dict[str, str]) -> None:
    if not hmac.compare_digest(fields.get("csrf", ""), session.csrf):
        raise CsrfError("bad form token")


def check_prelogin(request: Request, fields: dict[str, str]) -> None:
    cookie = request.cookies.get(PRELOGIN_COOKIE, "")
    if not cookie or not hmac.compare_digest(fields.get("csrf", ""), cookie):
        raise CsrfError("bad form token")


def new_prelogin() -> str:
    return secrets.token_urlsafe(24)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


# -- language ---------------------------------------------------------------------------------
@cache
def messages() -> dict[str, dict[str, str]]:
    """The interface texts: api/console/messages.json, {key: {"fr": ..., "en": ...}}."""
    data = json.loads((HERE / "messages.json").read_text(encoding="utf-8"))
    return {lang: {k: v.get(lang) or v["en"] for k, v in data.items()} for lang in LANGUAGES}


def language(request: Request) -> str:
    """?lang=, else the cookie, else the browser's first supported language; French."""
    wanted = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    if wanted in LANGUAGES:
        return wanted
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return "fr"


def translator(lang: str):  # noqa: ANN201
    table = messages()[lang]

    def t(key: str, **values: object) -> str:
        text = table.get(key, key)
        return text.format(**values) if values else text
    return t


def status_namer(lang: str):  # noqa: ANN201
    """A ledger status as people read it ('quarantined' -> 'en quarantaine'); the code
    itself when the table has no text for it."""
    table = messages()[lang]

    def st(status: str | None) -> str:
        return table.get(f"status.{status}", status or "")
    return st
