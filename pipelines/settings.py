"""One settings object, from environment variables and an optional TOML file.

Precedence: explicit keyword arguments > environment (DMP_*) > TOML file (DMP_CONFIG, default
$DMP_HOME/dmp.toml) > defaults. Everything the code needs to find its store and archive is
here, so that cli.py, flows.py and tests build the same thing from the same inputs.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class SettingsError(ValueError):
    """A setting that cannot be used (shown to the operator as one line)."""


@dataclass(frozen=True)
class Source:
    """A declared sender: who it says it is (MSH-3/MSH-4 namespace ids, '*' for any) and
    where it may connect from (addresses or networks; empty: anywhere)."""

    id: str
    sending_application: str = "*"
    sending_facility: str = "*"
    peers: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    charset: str | None = None  # fallback codec for its messages

    def names(self, application: str, facility: str) -> bool:
        return (self.sending_application in ("*", application)
                and self.sending_facility in ("*", facility))

    def allows_peer(self, peer: str | None) -> bool:
        if not self.peers:
            return True
        try:
            address = ipaddress.ip_address((peer or "").rsplit("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        return any(address in net for net in self.peers)


@dataclass(frozen=True)
class ListenerSettings:
    """The MLLP listener (`dmp-ingest serve`)."""

    host: str = "127.0.0.1"
    port: int = 2575
    ack_mode: str = "accept"  # accept: AA/CA once stored; application: once processed
    max_frame_bytes: int = 10 * 1024 * 1024
    idle_timeout: float = 300.0  # seconds without a byte before a connection is closed
    accept_unknown_senders: bool = False  # development only: senders not declared -> 'mllp'
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # client certificates required when set


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    archive_url: str
    auto_create: bool = False
    mappings_dir: Path | None = None  # extra per-source local->LOINC CSV tables
    source_charsets: dict[str, str] = field(default_factory=dict)  # source -> fallback codec
    batch_size: int = 500  # ledger rows claimed per processing batch
    commit_every: int = 100  # messages filed per transaction (bounds store lock waits)
    workers: int = 1  # `serve`: worker processes draining the ledger (0: a thread instead)
    s3_endpoint_url: str | None = None
    sources: tuple[Source, ...] = ()
    # Names this process's ledger claims; unique per running service (default: host name).
    # A service that starts releases the claims left under its name by a previous life.
    worker_id: str = field(default_factory=socket.gethostname)
    listener: ListenerSettings = field(default_factory=ListenerSettings)

    def fallback_charset(self, source: str) -> str | None:
        return self.source_charsets.get(source) or self.source_charsets.get("*")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def load_settings(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("DMP_HOME", "var")).resolve()
    config_path = Path(env.get("DMP_CONFIG", home / "dmp.toml"))
    conf: dict = {}
    if config_path.is_file():
        with config_path.open("rb") as fh:
            conf = tomllib.load(fh)

    def pick(name: str, default: object = None) -> object:
        """DMP_NAME from the environment, else `name` in the file; 'mllp_port' may also be
        written as `port` in a [mllp] table."""
        key = "DMP_" + name.upper()
        if key in env:
            return env[key]
        table, _, short = name.partition("_")
        if name not in conf and isinstance(conf.get(table), dict) and short in conf[table]:
            return conf[table][short]
        return conf.get(name, default)

    database_url = str(pick("database_url") or f"sqlite:///{home / 'dmp.sqlite3'}")
    archive_url = str(pick("archive_url") or str(home / "archive"))
    mappings = pick("mappings_dir")
    charsets = dict(conf.get("source_charsets", {}))
    for item in filter(None, str(env.get("DMP_SOURCE_CHARSETS", "")).split(",")):
        source, _, codec = item.partition("=")
        charsets[source.strip()] = codec.strip()
    sources = _sources(conf.get("sources", {}))
    for src in sources:
        if src.charset:
            charsets.setdefault(src.id, src.charset)
    values: dict[str, object] = dict(
        home=home,
        database_url=database_url,
        archive_url=archive_url,
        auto_create=_truthy(str(pick("auto_create", ""))),
        mappings_dir=Path(str(mappings)) if mappings else None,
        source_charsets=charsets,
        batch_size=int(str(pick("batch_size", 500))),
        commit_every=int(str(pick("commit_every", 100))),
        workers=int(str(pick("workers", 1))),
        s3_endpoint_url=(str(pick("s3_endpoint_url")) if pick("s3_endpoint_url") else None),
        sources=sources,
        worker_id=str(pick("worker_id") or socket.gethostname()),
        listener=_listener(pick),
    )
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _listener(pick) -> ListenerSettings:  # noqa: ANN001
    def path(name: str) -> Path | None:
        value = pick(name)
        return Path(str(value)) if value else None

    mode = str(pick("mllp_ack_mode", "accept"))
    if mode not in ("accept", "application"):
        raise SettingsError(f"mllp ack_mode must be 'accept' or 'application', not {mode!r}")
    try:
        return ListenerSettings(
            host=str(pick("mllp_host", "127.0.0.1")),
            port=int(str(pick("mllp_port", 2575))),
            ack_mode=mode,
            max_frame_bytes=int(str(pick("mllp_max_frame_bytes", 10 * 1024 * 1024))),
            idle_timeout=float(str(pick("mllp_idle_timeout", 300))),
            accept_unknown_senders=_truthy(str(pick("mllp_accept_unknown_senders", ""))),
            tls_cert=path("mllp_tls_cert"), tls_key=path("mllp_tls_key"),
            tls_client_ca=path("mllp_tls_client_ca"))
    except ValueError as exc:
        raise SettingsError(f"invalid mllp setting: {exc}") from None


def _sources(table: dict) -> tuple[Source, ...]:
    """[sources.<id>] tables: sending_application, sending_facility, peers, charset."""
    found = []
    for source_id, conf in table.items():
        if not isinstance(conf, dict):
            raise SettingsError(f"[sources.{source_id}] must be a table")
        try:
            peers = tuple(ipaddress.ip_network(str(p), strict=False)
                          for p in conf.get("peers", []))
        except ValueError as exc:
            raise SettingsError(f"[sources.{source_id}] peers: {exc}") from None
        found.append(Source(
            id=str(source_id),
            sending_application=str(conf.get("sending_application", "*")),
            sending_facility=str(conf.get("sending_facility", "*")),
            peers=peers, charset=conf.get("charset")))
    return tuple(found)
