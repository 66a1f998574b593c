"""An S3-compatible store that lacks a feature, for tests: a small HTTP proxy on loopback in
front of moto's server that answers some requests itself, as Garage, an older Ceph RGW or a
hosting provider's object storage does (501 NotImplemented for object tagging...), or alters
what it forwards (a store that ignores checksum headers, a body damaged on the way).

Real HTTP all the way: boto3 talks to the proxy, the proxy to moto; nothing in boto3 is
patched, so the client's own parsing of the store's error answers is what is tested.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# (method, path, query, headers) -> (status, error code[, extra XML of the error]) answered by
# the proxy, or None
Refusal = Callable[[str, str, dict[str, list[str]], dict[str, str]],
                   tuple[int, str] | tuple[int, str, str] | None]
# (method, path, query, headers, body) -> (headers, body) forwarded to the store
Alteration = Callable[[str, str, dict[str, list[str]], dict[str, str], bytes],
                      tuple[dict[str, str], bytes]]

_ERROR = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
          "<Message>{code}</Message><Resource>{path}</Resource><RequestId>quirk</RequestId>"
          "{extra}</Error>")


@dataclass
class QuirkyStore:
    """The proxy: ``endpoint`` is what boto3 is given; ``refuse`` and ``alter`` may be changed
    while it runs; ``seen`` lists (method, path, query) of every request."""

    upstream: str
    refuse: Refusal | None = None
    alter: Alteration | None = None
    # (method, header name, value) -> the value answered (a store's own ETags...)
    answer: Callable[[str, str, str], str] | None = None
    # (method, path, query, body) -> the body answered (a store's own listing XML...)
    reply: Callable[[str, str, dict[str, list[str]], bytes], bytes] | None = None
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    # seconds the store's clock (its Date header) is ahead of ours; a NAS's drifts
    clock_offset: float = 0.0
    # (method, path, query) -> bytes of the body sent before the connection is cut (the
    # answer's Content-Length is the whole body's), or None: a connection reset or a proxy's
    # idle timeout in the middle of a download
    cut: Callable[[str, str, dict[str, list[str]]], int | None] | None = None

    def __post_init__(self) -> None:
        store = self
        target = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                return super().date_time_string(time.time() + store.clock_offset)

            def _any(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                headers = {k: v for k, v in self.headers.items()}
                length = int(headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                store.seen.append((self.command, parts.path, parts.query))
                refusal = store.refuse and store.refuse(self.command, parts.path, query,
                                                        headers)
                if refusal:
                    status, code, *extra = refusal
                    text = _ERROR.format(code=code, path=parts.path,
                                         extra="".join(extra)).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(text)
                    return
                if store.alter:
                    headers, body = store.alter(self.command, parts.path, query, headers,
                                                body)
                headers = {k: v for k, v in headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                try:
                    conn.request(self.command, self.path, body=body or None,
                                 headers=headers | {"Content-Length": str(len(body))})
                    answer = conn.getresponse()
                    data = answer.read()
                    if store.reply and self.command != "HEAD":
                        data = store.reply(self.command, parts.path, query, data)
                    self.send_response(answer.status)
                    for key, value in answer.getheaders():
                        if key.lower() not in ("content-length", "transfer-encoding",
                                               "connection", "server", "date"):
                            self.send_header(key, store.answer(self.command, key, value)
                                             if store.answer else value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    sent = store.cut and store.cut(self.command, parts.path, query)
                    if sent is not None and self.command != "HEAD":
                        self.wfile.write(data[:sent])
                        self.wfile.flush()
                        self.close_connection = True  # the rest never comes
                    elif self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        # shutdown() waits for serve_forever's next look at its flag (every 0.5 s by default)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def no_tagging(method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str]) -> tuple[int, str] | None:
    """A store without object tagging (Garage, some providers): 501 NotImplemented for the
    tagging sub-resource and for a tagging header on a write."""
    if "tagging" in query or any(k.lower() in ("x-amz-tagging", "x-amz-tagging-directive")
                                 for k in headers):
        return 501, "NotImplemented"
    return None


def signed_for(region: str, *, named: bool = True) -> Refusal:
    """A store that checks the region of the SigV4 signature (Scaleway, OVH, Outscale: a
    request signed for us-east-1, boto3's default without a region, is refused); ``named``:
    its error says which region it expects (<Region>, as AWS does), else only the code."""
    def refuse(method: str, path: str, query: dict[str, list[str]],
               headers: dict[str, str]) -> tuple[int, str, str] | None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        if f"/{region}/s3/aws4_request" in auth:
            return None
        return (400, "AuthorizationHeaderMalformed",
                f"<Region>{region}</Region>" if named else "")
    return refuse
