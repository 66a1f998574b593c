"""One settings object, from environment variables and an optional TOML file.

Precedence: explicit keyword arguments > environment (DMP_*) > TOML file (DMP_CONFIG, default
$DMP_HOME/dmp.toml) > defaults. Everything the code needs to find its store and archive is
here, so that cli.py, flows.py and tests build the same thing from the same inputs.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Callable
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
    timezone: str | None = None  # IANA zone of its times sent without offset
    # MLLP release 2 (HL7 v3 Transport Specification, MLLP R2; Mirth's "MLLPv2" mode): once
    # its frame is stored, the sender is sent a commit acknowledgement block (VT 06 FS CR;
    # VT 15 FS CR, a NAK, when it could not be stored) before the HL7 ACK. Such a sender
    # waits for that block and reads anything else as a failed delivery; a release 1
    # sender would read the block as its ACK: a setting of the sender, not a guess.
    mllp_release: int = 1
    # Where its application ACKs go in enhanced mode (MSH-16 AL/ER/SU; v2.5 2.10: a new
    # message from us, which Mirth, Rhapsody, Cloverleaf and InterSystems take on an inbound
    # channel of their own). ``ack_route`` "host:port": sent there by an MLLP client, queued
    # durably until sent (``connectors.mllp.ack_sender``). Without it, a sender in a
    # request/response loop reads ONE reply per message: when the commit ACK is that reply,
    # the application ACK is kept (held, logged, shown by `imports show`), not sent as a
    # second frame it would take for the reply to its next message. ``ack_same_connection``:
    # the sender reads both (as @medplum/hl7 and node-hl7-client can): both on the connection.
    ack_route: tuple[str, int] | None = None
    ack_route_tls: bool = False
    ack_route_ca: Path | None = None  # the CA of the route's certificate (TLS); default: system
    ack_same_connection: bool = False
    # Namespace-only assigning authorities (CX.4.1 'CHU', no OID) are scoped to the sending
    # facility, MSH-4 (normalizers/identity.py ``scoped_authority``). ``shared_namespaces``:
    # those this source's facilities share (a hospital's lab and RIS, MSH-4 'LABO_CHU' and
    # 'RIS_CHU', numbering their patients in one 'CHU' domain), scoped instead to
    # ``identifier_domain`` (default: the source id; sources declaring one domain share
    # them). ``namespace_oids``: namespace -> the OID of its domain: this source's
    # identifiers under that namespace alone are read as the OID's (a lab naming by
    # namespace the IPP domain the GAM names by OID), and an ADT^A47 naming the domain both
    # ways (MRG-1 by OID, PID-3 by namespace) is paired.
    shared_namespaces: frozenset[str] = frozenset()
    identifier_domain: str | None = None
    namespace_oids: tuple[tuple[str, str], ...] = ()

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
        # an entry in the IPv4-mapped form (::ffff:10.1.2.0/120) matches IPv4 peers too:
        # peers of a dual-stack listener are known by their IPv4 address
        mapped = ipaddress.IPv6Address(f"::ffff:{address}") if address.version == 4 else None
        return any(address in net or (mapped is not None and mapped in net)
                   for net in self.peers)


@dataclass(frozen=True)
class ListenerSettings:
    """The MLLP listener (`dmp-ingest serve`)."""

    host: str = "127.0.0.1"
    port: int = 2575
    ack_mode: str = "accept"  # accept: AA/CA once stored; application: once processed
    max_frame_bytes: int = 10 * 1024 * 1024
    # seconds a connection may take to send its next whole frame (silence included: a
    # frame dribbled over longer is cut, a slow loris), or to read an ACK, before it is
    # closed; also the TLS handshake's limit (60 s at most)
    idle_timeout: float = 300.0
    accept_unknown_senders: bool = False  # development only: senders not declared -> 'mllp'
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None  # client certificates required when set
    # MSH-11 values filed here (HL7 table 0103); others are refused, AR 202 (v2.5 2.9.2):
    # a production intake must not file an engine's training or debugging traffic
    processing_ids: tuple[str, ...] = ("P",)
    # connections open at once; beyond, a new one is closed at once (its sender keeps its
    # messages and reconnects). 0: the file descriptor limit less what storing needs
    max_connections: int = 0
    # connections open at once from one peer address; beyond, its new one is closed at once
    # and the other peers are served. 0: no limit but max_connections (an EAI hub or a NAT
    # may carry many labs' connections from one address)
    max_connections_per_peer: int = 0
    # behind a TCP load balancer (HAProxy, AWS NLB, F5...): each connection starts with a
    # PROXY protocol header (v1 or v2) naming its sender, whose address then counts for
    # sources' peers, per-peer limits and logs; believed only from ``proxy_trusted``
    proxy_protocol: bool = False
    proxy_trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


@dataclass(frozen=True)
class HttpSettings:
    """The HTTP API (`dmp-ingest serve`). TLS: its own certificate and key, else the MLLP
    listener's when those are set (one certificate for the host's two services)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body: int = 10 * 1024 * 1024  # POST /imports: larger bodies get 413
    tls_cert: Path | None = None
    tls_key: Path | None = None


DEFAULT_POLL_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class FolderSource:
    """A watched drop folder (``[folders.<id>]``): files dropped there are taken by the folder
    poller (connectors/folder.py) as coming from source ``id``."""

    id: str
    path: Path
    settle_seconds: float = 2.0  # a file must be this old and unchanged since the last scan
    max_bytes: int = DEFAULT_POLL_MAX_BYTES  # larger files are refused (moved to failed/)
    recursive: bool = True  # also take files in subfolders (not hidden ones, not done/failed)
    poll_interval: float | None = None  # seconds between polls; None: Settings.poll_interval


@dataclass(frozen=True)
class BucketSource:
    """An S3 bucket prefix (``[buckets.<id>]``) polled by connectors/s3_bucket.py."""

    id: str
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # None: Settings.s3_endpoint_url
    # the store's signing region (Scaleway fr-par, OVH gra...); None: AWS_DEFAULT_REGION/profile
    region: str | None = None
    after: str = "tag"  # tag: tag dmp-intake=done in place; move: copy under processed_prefix
    processed_prefix: str = "processed/"  # after = "move": where taken objects go
    refused_prefix: str = "refused/"  # after = "move": where refused (too large) objects go
    max_bytes: int = DEFAULT_POLL_MAX_BYTES  # larger objects are refused (tagged/moved)
    poll_interval: float | None = None
    # an object is taken once its LastModified is this old by the store's clock: a bucket
    # served from a NAS (MinIO on a share) lists files its senders are still writing
    settle_seconds: float = 0.0
    # after = "move" on a versioned bucket: delete the version moved (kept by default, as a
    # noncurrent version under the delete marker) once intake has committed it
    delete_moved_version: bool = False
    # a requester-pays bucket (a lab's, read with our account): every request says we pay
    # (x-amz-request-payer); without it S3 refuses them all with AccessDenied
    requester_pays: bool = False
    # with after = "tag" every object taken stays listed: 0 lists the whole prefix at every
    # poll; N lists it whole once in N seconds and, between, only the keys after the last
    # one settled (StartAfter): for keys that grow (dated names), an object put under a key
    # sorting before is taken at the next whole listing
    full_listing_seconds: float = 0.0
    # a prefix names a folder: 'incoming' is read as 'incoming/' (else 'incoming-old/...'
    # and 'incoming2.hl7' were taken too); false: every key beginning with it, as written
    prefix_is_folder: bool = True

    @property
    def key_prefix(self) -> str:
        """The start of the keys taken: the prefix, with its '/' when it names a folder."""
        if self.prefix_is_folder and self.prefix and not self.prefix.endswith("/"):
            return self.prefix + "/"
        return self.prefix


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    archive_url: str
    auto_create: bool = False
    # false in production: an INS under the test or demonstration OIDs (1.2.250.1.213.1.4.10,
    # .4.11) is ignored (warning), never trusted to choose or create a dossier
    trust_test_ins: bool = True
    mappings_dir: Path | None = None  # extra per-source local->LOINC CSV tables
    source_charsets: dict[str, str] = field(default_factory=dict)  # source -> fallback codec
    # source -> IANA zone of the times it sends without offset ('*': every source)
    source_timezones: dict[str, str] = field(default_factory=dict)
    batch_size: int = 500  # ledger rows claimed per processing batch
    commit_every: int = 100  # messages filed per transaction (bounds store lock waits)
    workers: int = 1  # `serve`: worker processes draining the ledger (0: a thread instead)
    # `serve`: how much lower (a nice increment, 0-19) the worker processes and their
    # preparing pool run than the listener, so that a frame is stored and answered as soon
    # as it arrives while processing takes the CPU the listener leaves (pipelines/worker.py).
    # 0 (unchanged) by default: the gain was not measurable on a loaded machine (bench/README)
    worker_nice: int = 0
    # Processes preparing (read, parse, normalize) large batches while the worker files:
    # None = one per core when there are several; 0 = all in the worker (prepare_pool.py).
    prepare_processes: int | None = None
    # How long a claimed batch is a worker's: past it, another worker takes the batch again
    # (the owner died). Must exceed the time a batch takes, with a wide margin.
    lease_seconds: int = 600
    ocr_lang: str = "fra"  # tesseract language of scanned reports
    pdf_max_pages: int = 100
    pdf_timeout_seconds: float = 120.0  # whole document (each page's OCR: half of it)
    ocr_identity_confidence: float = 80.0  # identity read by OCR below this: quarantined
    s3_endpoint_url: str | None = None
    sources: tuple[Source, ...] = ()
    # Names this process's ledger claims; unique per running service (default: host name).
    # A service that starts releases the claims left under its name by a previous life.
    worker_id: str = field(default_factory=socket.gethostname)
    listener: ListenerSettings = field(default_factory=ListenerSettings)
    folders: tuple[FolderSource, ...] = ()
    buckets: tuple[BucketSource, ...] = ()
    poll_interval: float = 10.0  # `serve`: seconds between two polls of a folder or bucket
    retry_max: int = 5  # consecutive transient failures before TRANSIENT_EXHAUSTED
    retry_base_seconds: float = 30.0  # first retry delay; doubled each time
    # Sources whose local codes must all map to LOINC: an unmapped code fails the import
    # (CODE_UNMAPPED) instead of being filed flagged, so it is rerun once the table is fixed.
    require_mapping: frozenset[str] = frozenset()
    http: HttpSettings = field(default_factory=HttpSettings)
    # The HTTP API's token signing key (HS256). None: api/tokens.py keeps a random one in
    # $DMP_HOME/api_secret, so that `serve` and `token mint` on this host agree.
    api_secret: str | None = None
    # A source renamed in the settings: old id -> new id (``[renamed_sources]``). The ledger
    # keeps the id an import came in under; its per-source settings are the new id's, so that
    # a rerun of what came in before the rename is read as it was (charset, time zone,
    # required mappings, senders allowed), not as from an undeclared source.
    renamed_sources: dict[str, str] = field(default_factory=dict)
    # source -> seconds it may stay silent (nothing received) before `check` and the console
    # say so (``max_silence = "2h"`` in its [sources.X], [folders.X] or [buckets.X] table,
    # or in a [max_silence] table for any source id). A source not named is never silent.
    max_silence: dict[str, float] = field(default_factory=dict)
    # `check` and the console's backlog: a 'received' row waiting longer than the first is a
    # warning, than the second critical ([check] backlog_minutes, backlog_critical_minutes)
    backlog_minutes: float = 60.0
    backlog_critical_minutes: float = 240.0

    def current_source(self, source: str) -> str:
        """The id a source has now, following renames (old -> new -> newer)."""
        seen = {source}
        while (renamed := self.renamed_sources.get(source)) is not None and renamed not in seen:
            seen.add(renamed)
            source = renamed
        return source

    def declared_sources(self) -> frozenset[str]:
        """The source ids the settings declare: senders, drop folders, buckets."""
        return frozenset(s.id for s in (*self.sources, *self.folders, *self.buckets))

    def fallback_charset(self, source: str) -> str | None:
        source = self.current_source(source)
        return self.source_charsets.get(source) or self.source_charsets.get("*")

    def identifier_settings(self, source: str) -> tuple[str, frozenset[str], dict[str, str]]:
        """(domain, shared namespaces, namespace -> OID) of a source's identifiers, as
        ``parsers.hl7v2.er7.Message`` carries them to the normalizer: the domain is the
        declared ``identifier_domain``, else the source's id (following renames)."""
        source = self.current_source(source)
        declared = next((s for s in self.sources if s.id == source), None)
        if declared is None:
            return source, frozenset(), {}
        return (declared.identifier_domain or source, declared.shared_namespaces,
                dict(declared.namespace_oids))

    def source_zone(self, source: str) -> str | None:
        """The zone a source declared for its times without offset; None: undeclared (the
        normalizer reads the sender's zone from MSH-7, else Paris's: normalizers/dates.py)."""
        source = self.current_source(source)
        return self.source_timezones.get(source) or self.source_timezones.get("*")


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
    zones = _zones(conf.get("source_timezones", {}), env.get("DMP_SOURCE_TIMEZONES", ""))
    sources = _sources(conf.get("sources", {}))
    for src in sources:
        if src.charset:
            charsets.setdefault(src.id, src.charset)
        if src.timezone:
            zones.setdefault(src.id, src.timezone)
    # every mistake of the folder and bucket sources at once, one line each: an admin
    # declaring a dozen sources fixed them one start at a time
    problems: list[str] = []
    folders = _each(problems, _folders, conf.get("folders", {}), config_path.parent)
    buckets = _each(problems, _buckets, conf.get("buckets", {}))
    if problems:
        raise SettingsError("\n".join(problems))
    values: dict[str, object] = dict(
        home=home,
        database_url=database_url,
        archive_url=archive_url,
        auto_create=_truthy(str(pick("auto_create", ""))),
        trust_test_ins=_truthy(str(pick("trust_test_ins", "true"))),
        mappings_dir=Path(str(mappings)) if mappings else None,
        source_charsets=charsets,
        source_timezones=zones,
        batch_size=int(str(pick("batch_size", 500))),
        commit_every=int(str(pick("commit_every", 100))),
        workers=int(str(pick("workers", 1))),
        worker_nice=min(19, max(0, int(str(pick("worker_nice", 0))))),
        prepare_processes=(int(str(pick("prepare_processes")))
                           if pick("prepare_processes") not in (None, "") else None),
        lease_seconds=max(1, int(str(pick("lease_seconds", 600)))),
        ocr_lang=str(pick("ocr_lang", "fra")),
        pdf_max_pages=int(str(pick("pdf_max_pages", 100))),
        pdf_timeout_seconds=float(str(pick("pdf_timeout_seconds", 120))),
        ocr_identity_confidence=float(str(pick("ocr_identity_confidence", 80))),
        s3_endpoint_url=(str(pick("s3_endpoint_url")) if pick("s3_endpoint_url") else None),
        sources=sources,
        worker_id=str(pick("worker_id") or socket.gethostname()),
        listener=_listener(pick),
        folders=folders,
        buckets=buckets,
        poll_interval=_seconds("poll_interval", pick("poll_interval", 10.0), positive=True),
        retry_max=max(1, int(str(pick("retry_max", 5)))),
        retry_base_seconds=_seconds("retry_base_seconds", pick("retry_base_seconds", 30.0)),
        require_mapping=_names(pick("require_mapping", "")),
        http=_http(pick),
        api_secret=str(pick("api_secret")) if pick("api_secret") else None,
        renamed_sources=_renamed(conf.get("renamed_sources", {}),
                                 env.get("DMP_RENAMED_SOURCES", "")),
        max_silence=_silences(conf, env.get("DMP_MAX_SILENCE", "")),
        backlog_minutes=_minutes("check backlog_minutes", pick("check_backlog_minutes", 60)),
        backlog_critical_minutes=_minutes("check backlog_critical_minutes",
                                          pick("check_backlog_critical_minutes", 240)),
    )
    if values["backlog_critical_minutes"] < values["backlog_minutes"]:  # type: ignore[operator]
        raise SettingsError("check backlog_critical_minutes must be at least backlog_minutes "
                            "(a wait is a warning before it is critical)")
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_DURATION_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(where: str, value: object) -> float:
    """Seconds of a duration written '90s', '30m', '2h', '1d', '1w' or as a number of
    seconds; above 0 (a silence allowed of 0 would be an alarm at every check)."""
    text = "" if isinstance(value, bool) else str(value).strip().lower()
    m = _DURATION.match(text)
    seconds = float(m.group(1)) * _DURATION_SECONDS[m.group(2)] if m else 0.0
    if not m or seconds <= 0:
        raise SettingsError(f"{where}: a duration above 0 expected ('30m', '2h', '1d' or a "
                            f"number of seconds), not {value!r}")
    return seconds


def _minutes(where: str, value: object) -> float:
    """A number of minutes above 0 (TOML number or numeric text)."""
    try:
        minutes = float("nan" if isinstance(value, bool) else str(value))
    except ValueError:
        minutes = float("nan")
    if not 0 < minutes < float("inf"):
        raise SettingsError(f"{where}: a number of minutes above 0 expected, not {value!r}")
    return minutes


def _silences(conf: dict, env_value: str) -> dict[str, float]:
    """Every source's ``max_silence``: in its [sources.X], [folders.X] or [buckets.X] table,
    then the [max_silence] table (any source id: an HTTP sender, 'files'), then
    DMP_MAX_SILENCE ('labo-x=2h,imagerie=1d'), each later one winning."""
    found: dict[str, float] = {}
    for kind in ("sources", "folders", "buckets"):
        table = conf.get(kind, {})
        for source_id, sub in (table.items() if isinstance(table, dict) else ()):
            if isinstance(sub, dict) and "max_silence" in sub:
                found[str(source_id)] = duration(f"[{kind}.{source_id}] max_silence",
                                                 sub["max_silence"])
    table = conf.get("max_silence", {})
    if not isinstance(table, dict):
        raise SettingsError('[max_silence] must be a table of source = "2h"')
    for source_id, value in table.items():
        found[str(source_id).strip()] = duration(f"[max_silence] {source_id}", value)
    for item in filter(None, (i.strip() for i in env_value.split(","))):
        source_id, sep, value = item.partition("=")
        if not sep or not source_id.strip():
            raise SettingsError(f"DMP_MAX_SILENCE: 'source=duration' expected, not {item!r}")
        found[source_id.strip()] = duration(f"DMP_MAX_SILENCE {source_id.strip()}", value)
    return found


def _renamed(table: object, env: str) -> dict[str, str]:
    """``[renamed_sources]`` (``old = "new"``), then DMP_RENAMED_SOURCES ("old=new,...")."""
    if not isinstance(table, dict):
        raise SettingsError("[renamed_sources] must be a table of old = \"new\" source ids")
    renamed = {str(k).strip(): str(v).strip() for k, v in table.items()}
    for item in filter(None, (i.strip() for i in env.split(","))):
        old, sep, new = item.partition("=")
        if not sep:
            raise SettingsError(f"DMP_RENAMED_SOURCES: 'old=new' expected, not {item!r}")
        renamed[old.strip()] = new.strip()
    for old, new in renamed.items():
        if not old or not new or old == new:
            raise SettingsError(f"renamed_sources: {old!r} = {new!r} is not a rename")
    return renamed


def _names(value: object) -> frozenset[str]:
    """A list of source ids: a TOML array, or a comma-separated string (environment)."""
    if isinstance(value, list | tuple):
        return frozenset(str(v).strip() for v in value if str(v).strip())
    return frozenset(v.strip() for v in str(value or "").split(",") if v.strip())


def _listener(pick) -> ListenerSettings:  # noqa: ANN001
    def path(name: str) -> Path | None:
        value = pick(name)
        return Path(str(value)) if value else None

    mode = str(pick("mllp_ack_mode", "accept"))
    proxy = _truthy(str(pick("mllp_proxy_protocol", "")))
    trusted = _networks("mllp proxy_trusted", pick("mllp_proxy_trusted", ""))
    if proxy and not trusted:
        raise SettingsError("mllp proxy_protocol is on but proxy_trusted names no load "
                            "balancer address: a PROXY header from anyone would let it "
                            "claim any sender's address")
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
            tls_client_ca=path("mllp_tls_client_ca"),
            processing_ids=_processing_ids(pick("mllp_processing_ids", "P")),
            max_connections=int(str(pick("mllp_max_connections", 0))),
            max_connections_per_peer=int(str(pick("mllp_max_connections_per_peer", 0))),
            proxy_protocol=proxy, proxy_trusted=trusted)
    except ValueError as exc:
        raise SettingsError(f"invalid mllp setting: {exc}") from None


def _networks(where: str, value: object) -> tuple[ipaddress.IPv4Network
                                                   | ipaddress.IPv6Network, ...]:
    """Addresses or networks (CIDR), as a TOML array or a comma-separated string."""
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    try:
        return tuple(ipaddress.ip_network(str(i).strip(), strict=False)
                     for i in items if str(i).strip())
    except ValueError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def _processing_ids(value: object) -> tuple[str, ...]:
    """``processing_ids`` as a TOML list or a comma-separated string ("P,T"), upper-cased."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    ids = tuple(dict.fromkeys(str(i).strip().upper() for i in items if str(i).strip()))
    if not ids:
        raise SettingsError("mllp processing_ids must name at least one MSH-11 value (P)")
    return ids


def _http(pick) -> HttpSettings:  # noqa: ANN001
    """DMP_HTTP_HOST, DMP_HTTP_PORT, DMP_HTTP_MAX_BODY, DMP_HTTP_TLS_CERT, DMP_HTTP_TLS_KEY
    (or host, port... in an [http] table)."""
    def path(name: str) -> Path | None:
        value = pick(name)
        return Path(str(value)) if value else None

    try:
        settings = HttpSettings(host=str(pick("http_host", "127.0.0.1")),
                                port=int(str(pick("http_port", 8080))),
                                max_body=int(str(pick("http_max_body", 10 * 1024 * 1024))),
                                tls_cert=path("http_tls_cert"), tls_key=path("http_tls_key"))
    except ValueError as exc:
        raise SettingsError(f"invalid http setting: {exc}") from None
    if settings.max_body <= 0:
        raise SettingsError("http max_body: a positive number of bytes expected")
    return settings


def _zones(table: object, env_value: str) -> dict[str, str]:
    """Per-source time zones: a `source_timezones` TOML table, then DMP_SOURCE_TIMEZONES
    ('labre=Indian/Reunion,labg=America/Guadeloupe'), which wins. Each must be an IANA zone
    this machine knows: a typo would otherwise file every time of that source hours off."""
    if not isinstance(table, dict):
        raise SettingsError("source_timezones must be a table of source = \"Zone/Name\"")
    zones = {str(k).strip(): str(v).strip() for k, v in table.items()}
    for item in filter(None, (i.strip() for i in env_value.split(","))):
        source, _, zone = item.partition("=")
        zones[source.strip()] = zone.strip()
    for source, zone in zones.items():
        _check_zone(f"source_timezones {source!r}", zone)
    return zones


def _check_zone(where: str, zone: object) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = str(zone).strip()
    try:
        if not name or name.startswith(("/", ".")) or ".." in name:
            raise ValueError
        ZoneInfo(name)
    except (ValueError, ZoneInfoNotFoundError):
        raise SettingsError(f"{where}: {name!r} is not an IANA time zone known here "
                            "(e.g. 'Europe/Paris', 'Indian/Reunion', 'America/Cayenne')") from None
    return name


SOURCE_KEYS = frozenset({
    "sending_application", "sending_facility", "peers", "charset", "timezone", "mllp_release",
    "application_ack_route", "application_ack_tls", "application_ack_ca",
    "application_ack_same_connection", "max_silence", "shared_namespaces", "identifier_domain",
    "namespace_oids"})


def _sources(table: dict) -> tuple[Source, ...]:
    """[sources.<id>] tables: sending_application, sending_facility, peers, charset,
    timezone, mllp_release (1 or 2), the application ACK's route, max_silence,
    shared_namespaces, identifier_domain, namespace_oids.

    An unknown name stops the start, as in [folders.*] and [buckets.*]: a misspelt
    'sending_aplication' left the source matching every application ('*'), and a top-level
    key written after a [sources.x] header (TOML files it in that table) was ignored."""
    found = []
    for source_id, conf in table.items():
        if not isinstance(conf, dict):
            raise SettingsError(f"[sources.{source_id}] must be a table")
        unknown = sorted(set(conf) - SOURCE_KEYS)
        if unknown:
            raise SettingsError("\n".join(
                f"[sources.{source_id}] unknown setting {name!r} (known: "
                f"{', '.join(sorted(SOURCE_KEYS))})" for name in unknown))
        try:
            peers = tuple(ipaddress.ip_network(str(p), strict=False)
                          for p in conf.get("peers", []))
        except ValueError as exc:
            raise SettingsError(f"[sources.{source_id}] peers: {exc}") from None
        release = conf.get("mllp_release", 1)
        if release not in (1, 2) or isinstance(release, bool):
            raise SettingsError(f"[sources.{source_id}] mllp_release must be 1 or 2 "
                                f"(MLLP release 1 or release 2), not {release!r}")
        found.append(Source(
            id=str(source_id),
            sending_application=str(conf.get("sending_application", "*")),
            sending_facility=str(conf.get("sending_facility", "*")),
            peers=peers, charset=conf.get("charset"),
            timezone=(_check_zone(f"[sources.{source_id}] timezone", conf["timezone"])
                      if conf.get("timezone") else None),
            mllp_release=release, **_ack_route(str(source_id), conf),
            **_identifier_settings(str(source_id), conf)))
    return tuple(found)


_OID_TEXT = re.compile(r"[0-2](?:\.\d+)+")
_NAMESPACE_MAX = 100  # a namespace scoped with its domain must fit patient_identifiers.authority


def _identifier_settings(source_id: str, conf: dict) -> dict:
    """A source's ``shared_namespaces`` (list of namespaces), ``identifier_domain`` (text)
    and ``namespace_oids`` (table namespace = "OID"), checked (``Source``)."""
    where = f"[sources.{source_id}]"
    shared = conf.get("shared_namespaces", [])
    if not isinstance(shared, list) or not all(
            isinstance(n, str) and n.strip() and len(n.strip()) <= _NAMESPACE_MAX
            for n in shared):
        raise SettingsError(f"{where} shared_namespaces: a list of namespaces expected "
                            f"(e.g. [\"CHU\"]), not {shared!r}")
    domain = conf.get("identifier_domain")
    if domain is not None and (not isinstance(domain, str) or not domain.strip()
                               or len(domain.strip()) > _NAMESPACE_MAX):
        raise SettingsError(f"{where} identifier_domain: a name expected, not {domain!r}")
    aliases = conf.get("namespace_oids", {})
    if not isinstance(aliases, dict) or not all(
            isinstance(v, str) and _OID_TEXT.fullmatch(v.strip()) and str(k).strip()
            for k, v in aliases.items()):
        raise SettingsError(f"{where} namespace_oids: a table of namespace = \"OID\" expected "
                            f"(e.g. CHU = \"1.2.250.1.71.4.2.2\"), not {aliases!r}")
    return {"shared_namespaces": frozenset(n.strip().upper() for n in shared),
            "identifier_domain": domain.strip() if domain else None,
            "namespace_oids": tuple(sorted((str(k).strip().upper(), v.strip())
                                           for k, v in aliases.items()))}


def _ack_route(source_id: str, conf: dict) -> dict:
    """A source's application ACK settings (``Source.ack_route``...): application_ack_route
    ("host:port", "[v6]:port"), application_ack_tls, application_ack_ca,
    application_ack_same_connection; a route and the same connection exclude each other."""
    where = f"[sources.{source_id}]"
    route, tls = conf.get("application_ack_route"), conf.get("application_ack_tls", False)
    same = conf.get("application_ack_same_connection", False)
    ca = conf.get("application_ack_ca")
    if not isinstance(tls, bool) or not isinstance(same, bool):
        raise SettingsError(f"{where} application_ack_tls and application_ack_same_connection "
                            "must be true or false")
    if route is not None and same:
        raise SettingsError(f"{where} application_ack_route and "
                            "application_ack_same_connection exclude each other: the "
                            "application ACK goes to one place")
    if route is None and (tls or ca):
        raise SettingsError(f"{where} application_ack_tls/application_ack_ca need an "
                            "application_ack_route")
    return {"ack_route": parse_host_port(f"{where} application_ack_route", route)
            if route is not None else None,
            "ack_route_tls": tls, "ack_route_ca": Path(ca) if ca else None,
            "ack_same_connection": same}


_HOST_PORT = re.compile(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:\[\]]+)):(\d{1,5})$")


def parse_host_port(where: str, value: object) -> tuple[str, int]:
    """'host:port' (an IPv6 address in brackets) -> (host, port), else a SettingsError."""
    m = _HOST_PORT.match(str(value).strip()) if isinstance(value, str) else None
    port = int(m.group(3)) if m else 0
    if not m or not 0 < port < 65536:
        raise SettingsError(f"{where}: 'host:port' expected (e.g. 'mirth.labo.fr:6661', "
                            f"'[2001:db8::1]:6661'), not {value!r}")
    return (m.group(1) or m.group(2)), port


_FOLDER_KEYS = {"path", "settle_seconds", "max_bytes", "recursive", "poll_interval"}
_BUCKET_KEYS = {"bucket", "prefix", "endpoint_url", "region", "after", "processed_prefix",
                "refused_prefix", "max_bytes", "poll_interval", "settle_seconds",
                "delete_moved_version", "requester_pays", "full_listing_seconds",
                "prefix_is_folder"}


def _seconds(where: str, value: object, *, positive: bool = False) -> float:
    """A number of seconds (>= 0, or > 0 when ``positive``); TOML numbers or numeric text."""
    try:
        if isinstance(value, bool):
            raise ValueError
        seconds = float(str(value))
    except ValueError:
        raise SettingsError(f"{where}: a number of seconds expected, not {value!r}") from None
    if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0 or (
            positive and seconds == 0):
        raise SettingsError(f"{where}: must be {'above' if positive else 'at least'} 0, "
                            f"not {value!r}")
    return seconds


def _max_bytes(where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SettingsError(f"{where}: a positive whole number of bytes expected, "
                            f"not {value!r}")
    return value


def _each(problems: list[str], parse: Callable[..., tuple], *args: object) -> tuple:
    """``parse(*args)``, its mistakes (one a line) added to ``problems`` instead of raised."""
    try:
        return parse(*args)
    except SettingsError as exc:
        problems.extend(str(exc).splitlines())
        return ()


def _poll_tables(kind: str, table: object, keys: set[str],
                 problems: list[str]) -> list[tuple[str, dict]]:
    """The [<kind>.<id>] tables; a table's mistakes of shape (not a table, unknown names:
    each its own line) go to ``problems`` and the table is left out."""
    if not isinstance(table, dict):
        raise SettingsError(f"[{kind}] must hold [{kind}.<source>] tables")
    found = []
    for source_id, conf in table.items():
        where = f"[{kind}.{source_id}]"
        if not str(source_id).strip():
            problems.append(f"[{kind}] a source id cannot be empty")
            continue
        if not isinstance(conf, dict):
            problems.append(f"{where} must be a table")
            continue
        unknown = sorted(set(conf) - keys)
        problems.extend(f"{where} unknown setting {name!r} (known: {', '.join(sorted(keys))})"
                        for name in unknown)
        if not unknown:
            found.append((str(source_id), conf))
    return found


def _text(where: str, conf: dict, name: str, default: str | None = None) -> str | None:
    value = conf.get(name, default)
    if value is not None and not isinstance(value, str):
        raise SettingsError(f"{where} {name}: text expected, not {value!r}")
    return value


def _folders(table: object, base: Path) -> tuple[FolderSource, ...]:
    """[folders.<id>] tables: path (required; a relative path is relative to the settings
    file's folder), settle_seconds, max_bytes, recursive, poll_interval."""
    found = []
    paths: dict[Path, str] = {}
    problems: list[str] = []
    for source_id, conf in _poll_tables("folders", table, _FOLDER_KEYS, problems):
        try:
            found.append(_folder(source_id, conf, base, paths))
        except SettingsError as exc:
            problems.append(str(exc))
    if problems:
        raise SettingsError("\n".join(problems))
    _check_nested_folders(found)
    return tuple(found)


def _folder(source_id: str, conf: dict, base: Path, paths: dict[Path, str]) -> FolderSource:
    """One [folders.<id>] table."""
    where = f"[folders.{source_id}]"
    raw = _text(where, conf, "path")
    if not raw or not raw.strip():
        raise SettingsError(f"{where} path: required (the folder to watch)")
    if "\0" in raw:
        raise SettingsError(f"{where} path: must not contain a NUL character")
    path = (base / Path(raw).expanduser()).resolve()
    if path in paths:
        raise SettingsError(f"{where} path: already watched by [folders.{paths[path]}]")
    paths[path] = source_id
    recursive = conf.get("recursive", True)
    if not isinstance(recursive, bool):
        raise SettingsError(f"{where} recursive: true or false expected, not {recursive!r}")
    interval = conf.get("poll_interval")
    return FolderSource(
        id=source_id, path=path,
        settle_seconds=_seconds(f"{where} settle_seconds", conf.get("settle_seconds", 2.0)),
        max_bytes=_max_bytes(f"{where} max_bytes",
                             conf.get("max_bytes", DEFAULT_POLL_MAX_BYTES)),
        recursive=recursive,
        poll_interval=(None if interval is None else
                       _seconds(f"{where} poll_interval", interval, positive=True)))


def _check_nested_folders(sources: list[FolderSource]) -> None:
    """A folder inside another source's recursive folder would be walked by both: the outer
    poller takes the inner one's files (under its own source id, so level-1 dedupe does not
    see the repeat) and, worse, the files the inner one already moved to its done/ and
    failed/, which are only skipped at the top of a watched folder: filed twice."""
    for outer in sources:
        if not outer.recursive:
            continue
        for inner in sources:
            if inner is not outer and inner.path.is_relative_to(outer.path):
                raise SettingsError(f"[folders.{inner.id}] path: inside the folder of "
                                    f"[folders.{outer.id}] (recursive), which would take its "
                                    f"files too; watch sibling folders, or set "
                                    f"recursive = false on [folders.{outer.id}]")


def _buckets(table: object) -> tuple[BucketSource, ...]:
    """[buckets.<id>] tables: bucket (required), prefix, endpoint_url, region, after (tag|move),
    processed_prefix, refused_prefix, max_bytes, poll_interval, settle_seconds,
    delete_moved_version, requester_pays, full_listing_seconds, prefix_is_folder. Every
    source's mistake is
    said, one line each."""
    found = []
    problems: list[str] = []
    for source_id, conf in _poll_tables("buckets", table, _BUCKET_KEYS, problems):
        try:
            found.append(_bucket(source_id, conf))
        except SettingsError as exc:
            problems.append(str(exc))
    if problems:
        raise SettingsError("\n".join(problems))
    _check_bucket_areas(found)
    return tuple(found)


def _bucket(source_id: str, conf: dict) -> BucketSource:
    """One [buckets.<id>] table."""
    where = f"[buckets.{source_id}]"
    bucket = _text(where, conf, "bucket")
    if not bucket or not bucket.strip() or "/" in bucket:
        raise SettingsError(f"{where} bucket: required, a bucket name (no '/'), "
                            f"not {bucket!r}")
    after = _text(where, conf, "after", "tag")
    if after not in ("tag", "move"):
        raise SettingsError(f"{where} after: 'tag' or 'move', not {after!r}")
    prefix = _text(where, conf, "prefix", "") or ""
    processed = _folder_prefix(_text(where, conf, "processed_prefix", "processed/") or "")
    refused = _folder_prefix(_text(where, conf, "refused_prefix", "refused/") or "")
    if after == "move":
        for name, value in (("processed_prefix", processed), ("refused_prefix", refused)):
            if not value.strip("/"):
                raise SettingsError(f"{where} {name}: required with after = 'move'")
        if processed == refused:
            raise SettingsError(f"{where} processed_prefix and refused_prefix must differ")
    endpoint = _text(where, conf, "endpoint_url")
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(f"{where} endpoint_url: an http(s):// URL expected, "
                            f"not {endpoint!r}")
    region = _text(where, conf, "region")
    if region is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,40}", region):
        raise SettingsError(f"{where} region: a region name (fr-par, gra, eu-west-3), "
                            f"not {region!r}")
    delete_version = conf.get("delete_moved_version", False)
    if not isinstance(delete_version, bool):
        raise SettingsError(f"{where} delete_moved_version: true or false expected, not "
                            f"{delete_version!r}")
    if delete_version and after != "move":
        raise SettingsError(f"{where} delete_moved_version: only with after = 'move' "
                            f"(with 'tag' nothing is moved)")
    payer = conf.get("requester_pays", False)
    if not isinstance(payer, bool):
        raise SettingsError(f"{where} requester_pays: true or false expected, not {payer!r}")
    folder = conf.get("prefix_is_folder", True)
    if not isinstance(folder, bool):
        raise SettingsError(f"{where} prefix_is_folder: true or false expected, not "
                            f"{folder!r}")
    interval = conf.get("poll_interval")
    return BucketSource(
        id=source_id, bucket=bucket, prefix=prefix, endpoint_url=endpoint or None,
        region=region or None,
        after=after, processed_prefix=processed, refused_prefix=refused,
        max_bytes=_max_bytes(f"{where} max_bytes",
                             conf.get("max_bytes", DEFAULT_POLL_MAX_BYTES)),
        poll_interval=(None if interval is None else
                       _seconds(f"{where} poll_interval", interval, positive=True)),
        settle_seconds=_seconds(f"{where} settle_seconds", conf.get("settle_seconds", 0)),
        delete_moved_version=delete_version, requester_pays=payer,
        full_listing_seconds=_seconds(f"{where} full_listing_seconds",
                                      conf.get("full_listing_seconds", 0)),
        prefix_is_folder=folder)


def _folder_prefix(value: str) -> str:
    """processed_prefix and refused_prefix name the 'folders' taken objects are moved
    under (``<processed_prefix><key>``). Written without the trailing '/' ('traites'), an
    object went to 'traitesincoming/x.hl7', and every key beginning with those letters
    ('traitement-urgent.hl7' put at the top of a bucket polled whole) was skipped as ours,
    never taken, unsaid. The '/' is added."""
    return value if not value or value.endswith("/") else value + "/"


def _areas(source: BucketSource) -> list[tuple[str, str]]:
    """(what, key prefix) a source reads or writes in its bucket."""
    areas = [("prefix", source.key_prefix)]
    if source.after == "move":
        areas += [("processed_prefix", source.processed_prefix),
                  ("refused_prefix", source.refused_prefix)]
    return areas


def _check_bucket_areas(sources: list[BucketSource]) -> None:
    """Two sources whose prefixes overlap on one bucket (one a string prefix of the other:
    '' of everything, 'lab' of 'lab2/') would both take the same objects, each recording
    them under its own source id: level-1 dedupe is per source, so they would be filed
    twice. Likewise a source reading where another moves what it took. And a prefix inside
    the source's own processed/refused area would never be taken."""
    for n, a in enumerate(sources):
        for what, area in _areas(a)[1:]:
            if a.key_prefix.startswith(area):
                raise SettingsError(f"[buckets.{a.id}] prefix {a.prefix!r} is inside its own "
                                    f"{what} {area!r}: nothing would ever be taken")
        for b in sources[n + 1:]:
            if (a.bucket, a.endpoint_url) != (b.bucket, b.endpoint_url):
                continue
            for x, y in ((a, b), (b, a)):
                for what, area in _areas(y):
                    if x.key_prefix.startswith(area) or area.startswith(x.key_prefix):
                        raise SettingsError(
                            f"[buckets.{x.id}] prefix {x.prefix!r} overlaps [buckets.{y.id}] "
                            f"{what} {area!r} on bucket {a.bucket!r}: both would take the "
                            f"same objects (give each source its own prefix, e.g. 'labA/')")


# Every kind of source may say how long it may stay silent (read by ``_silences``).
_FOLDER_KEYS.add("max_silence")
_BUCKET_KEYS.add("max_silence")
