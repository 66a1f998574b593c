"""Bearer tokens of the HTTP API: HS256 JWTs signed with one key, turned into a Principal.

A token says who is calling and in which capacity (``scope``): a sender pushing imports, a
professional (RPPS number and role), a patient (their dossier's internal id), a legal
representative (their account id: which dossiers they read is what an admin declared, not
what the token says) or an admin.
What that caller may then do is not decided here but in dossiers/access.py; this module only
answers "is this token ours, still valid, and complete?".

The key is ``settings.api_secret`` (DMP_API_SECRET or ``api_secret`` in the TOML file). When
none is configured, a random one is created once in ``$DMP_HOME/api_secret`` (mode 0600), so
that `dmp-ingest serve` and `dmp-ingest token mint` on the same host agree without setup.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import jwt

from dossiers.access import ACCOUNT_ID as _REPRESENTATIVE
from dossiers.access import Principal, normalize_rpps
from pipelines.settings import Settings, SettingsError

ALGORITHM = "HS256"
SCOPES = ("sender", "professional", "patient", "admin", "representative")
DEFAULT_TTL = 3600
MIN_SECRET = 32  # bytes: RFC 7518 asks for a key at least as long as the hash (256 bits)
SECRET_FILE = "api_secret"
_EXTRA = {"sender": "source", "professional": "rpps", "patient": "patient",
          "representative": "representative"}


class TokenError(Exception):
    """A token we cannot accept (401). ``code`` for programs, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def signing_key(settings: Settings) -> bytes:
    """The configured secret, else the one kept in $DMP_HOME (created on first use)."""
    if settings.api_secret:
        key = settings.api_secret.encode("utf-8")
        if len(key) < MIN_SECRET:
            raise SettingsError(f"api_secret: {MIN_SECRET} characters or more expected")
        return key
    return _stored_key(settings.home / SECRET_FILE)


def _stored_key(path: Path) -> bytes:
    """Read the key file, or create it: written to a temporary file, then linked into place,
    so that two processes starting together never see a half-written key and both end up
    with the same one."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_urlsafe(48).encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process got there first: theirs wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = path.read_bytes().strip()
    if len(key) < MIN_SECRET:
        raise SettingsError(f"{path}: the API key is too short; delete the file to make "
                            "a new one")
    return key


def mint(settings: Settings, scope: str, *, subject: str | None = None,
         source: str | None = None, rpps: str | None = None, role: str | None = None,
         patient: str | int | None = None, representative: str | None = None,
         ttl: int = DEFAULT_TTL,
         now: float | None = None) -> str:
    """A signed token for ``scope`` (tests, demos, and the senders' configuration).
    ValueError when the claims the scope needs are missing."""
    if scope not in SCOPES:
        raise ValueError(f"scope: one of {', '.join(SCOPES)}")
    if ttl <= 0:
        raise ValueError("ttl: a positive number of seconds")
    claims: dict[str, object] = {}
    if scope == "sender":
        if not source:
            raise ValueError("a sender token needs --source")
        claims["source"] = source
        subject = subject or source
    elif scope == "professional":
        number = normalize_rpps(rpps)
        if number is None or not role:
            raise ValueError("a professional token needs --rpps (11 digits) and --role")
        claims.update(rpps=number, role=role)
        subject = subject or number
    elif scope == "patient":
        if patient is None or not str(patient).strip().isascii() or \
                not str(patient).strip().isdigit():
            raise ValueError("a patient token needs --patient (the dossier's internal id)")
        claims["patient"] = str(int(str(patient).strip()))
        subject = subject or claims["patient"]
    elif scope == "representative":
        account = (representative or "").strip()
        if not _REPRESENTATIVE.match(account):
            raise ValueError("a representative token needs --representative (their account "
                             "id: letters, digits, '.', '_', '-')")
        claims["representative"] = account
        subject = subject or account
    elif not subject:
        raise ValueError("an admin token needs --name")
    issued = int(now if now is not None else time.time())
    claims.update(sub=str(subject), scope=scope, iat=issued, exp=issued + int(ttl))
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM)


def claims_of(settings: Settings, token: str) -> dict:
    """The claims of a token this service signed (``token mint`` audits them)."""
    return jwt.decode(token, signing_key(settings), algorithms=[ALGORITHM])


def principal_from(token: str, key: bytes) -> Principal:
    """The Principal a token names, or TokenError (expired, signature, algorithm, claims)."""
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM],
                            options={"require": ["sub", "scope", "exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("TOKEN_EXPIRED", "the token has expired") from None
    except jwt.InvalidSignatureError:
        raise TokenError("TOKEN_INVALID", "the token's signature is not ours") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError("TOKEN_INVALID", f"tokens are signed with {ALGORITHM} only") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError("TOKEN_INVALID", f"the token has no {exc.claim!r} claim") from None
    except jwt.InvalidTokenError:
        raise TokenError("TOKEN_INVALID", "not a valid token") from None
    scope = claims.get("scope")
    if scope not in SCOPES:
        raise TokenError("TOKEN_INVALID", f"unknown scope (one of {', '.join(SCOPES)})")
    extra = _EXTRA.get(scope)
    value = claims.get(extra) if extra else claims.get("sub")
    if not isinstance(value, str | int) or not str(value).strip():
        raise TokenError("TOKEN_INVALID", f"a {scope} token needs a {extra or 'sub'!r} claim")
    value = str(value).strip()
    if scope == "professional":
        number = normalize_rpps(value)
        role = claims.get("role")
        if number is None or not isinstance(role, str) or not role.strip():
            raise TokenError("TOKEN_INVALID",
                             "a professional token needs 'rpps' (11 digits) and 'role'")
        return Principal("professional", number, role.strip())
    if scope == "patient":
        if not value.isascii() or not value.isdigit():
            raise TokenError("TOKEN_INVALID", "'patient' is the dossier's internal id")
        value = str(int(value))  # "012" is dossier 12
    if scope == "representative" and not _REPRESENTATIVE.match(value):
        raise TokenError("TOKEN_INVALID", "'representative' is an account id (letters, "
                         "digits, '.', '_', '-')")
    return Principal(scope, value)
