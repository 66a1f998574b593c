"""The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) that a TCP load
balancer (HAProxy, AWS NLB, F5, a Kubernetes service through one) writes first on each
connection it opens to the listener: the address of the sender it is relaying.

Behind such a balancer every connection comes from the balancer's address, so the sources'
allowed ``peers`` and the per-peer connection limit saw one peer for every lab. With
``[mllp] proxy_protocol`` the listener reads this header (before any TLS: the balancer writes
it in clear) and takes the sender's address from it, from the configured balancers only.

``parse_header`` reads a buffer: the header and its length, ``None`` while more bytes are
needed, ``ProxyHeaderError`` (a short reason, no content quoted) when it is not one.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included (the specification's figure)
V2_MAX_BODY = 65535  # the 16-bit length of what follows the v2 fixed part


class ProxyHeaderError(ValueError):
    """Not a PROXY protocol header: the connection is refused."""


@dataclass(frozen=True)
class ProxyHeader:
    """What the balancer said: the sender's address and port, or None for a connection the
    balancer opened itself (v2 LOCAL: its health check; v1 UNKNOWN, v2 UNSPEC)."""

    version: int
    source: tuple[str, int] | None


def parse_header(data: bytes) -> tuple[ProxyHeader, int] | None:
    """(header, bytes it took) from the start of ``data``; None when more is needed."""
    if data[:len(V2_SIGNATURE)] == V2_SIGNATURE[:len(data)]:  # a prefix of it, or it
        return _v2(data) if len(data) >= len(V2_SIGNATURE) else None
    if data[:len(V1_PREFIX)] == V1_PREFIX[:len(data)]:
        return _v1(data) if len(data) >= len(V1_PREFIX) else None
    raise ProxyHeaderError("no PROXY protocol header (the connection's first bytes are not "
                           "'PROXY ' nor the version 2 signature)")


def _v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError(f"version 1 header without CRLF in its first {V1_MAX} bytes")
        return None
    try:
        words = data[:end].decode("ascii").split(" ")
    except UnicodeDecodeError:
        raise ProxyHeaderError("version 1 header not in ASCII") from None
    if len(words) >= 2 and words[1] == "UNKNOWN":
        return ProxyHeader(1, None), end + 2
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError("version 1 header: 'PROXY TCP4|TCP6|UNKNOWN src dst sport "
                               "dport' expected")
    family = 4 if words[1] == "TCP4" else 6
    try:
        source = ipaddress.ip_address(words[2])
        dest = ipaddress.ip_address(words[3])
        port = int(words[4])
        int(words[5])
    except ValueError:
        raise ProxyHeaderError("version 1 header: an address or port is not valid") from None
    if source.version != family or dest.version != family or not 0 <= port <= 65535:
        raise ProxyHeaderError(f"version 1 header: addresses not of {words[1]}")
    return ProxyHeader(1, (str(source), port)), end + 2


def _v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    if len(data) < 16:
        return None
    version_command, family, length = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"version 2 signature with version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (0, 1):
        raise ProxyHeaderError(f"version 2 header with unknown command {command}")
    if len(data) < 16 + length:
        return None
    body = data[16:16 + length]
    taken = 16 + length
    if command == 0:  # LOCAL: the balancer's own connection (a health check)
        return ProxyHeader(2, None), taken
    if family == 0x11:  # TCP over IPv4
        if length < 12:
            raise ProxyHeaderError("version 2 header: IPv4 addresses cut short")
        src, _, sport, _ = struct.unpack("!4s4sHH", body[:12])
        return ProxyHeader(2, (str(ipaddress.IPv4Address(src)), sport)), taken
    if family == 0x21:  # TCP over IPv6
        if length < 36:
            raise ProxyHeaderError("version 2 header: IPv6 addresses cut short")
        src, _, sport, _ = struct.unpack("!16s16sHH", body[:36])
        return ProxyHeader(2, (str(ipaddress.IPv6Address(src)), sport)), taken
    if family == 0x00:  # UNSPEC: the balancer does not know; the connection's own address
        return ProxyHeader(2, None), taken
    raise ProxyHeaderError(f"version 2 header: transport family 0x{family:02x} is not TCP "
                           "(UDP or a UNIX socket relayed to an MLLP listener)")
