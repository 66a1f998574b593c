"""Server-side TLS for the MLLP listener, on a plain transport, that keeps answering a client
which has closed its sending side.

Why not asyncio's own TLS (``loop.start_tls``, ``start_server(ssl=...)``): once it reads the
client's close_notify, or a bare TCP FIN, it starts shutting the connection down and drops
every later write without a word ("returning true from eof_received() has no effect when
using ssl", asyncio.sslproto). An engine that sends its last frame and at once closes its
side (close_notify right after the frame, as Java's ``SSLSocket.shutdownOutput`` does in TLS
1.3, or a FIN under TLS) had its message stored and never got its ACK: it sent it again,
and flagged the link. TLS allows this half-close (RFC 8446 6.1: each side closes its own
direction; OpenSSL writes after a received close_notify), as MLLP over TCP does.

Here the TLS records go through an ``ssl.SSLObject`` over memory buffers: ``TLSServerProtocol``
is the plain transport's protocol; it decrypts into the application's protocol (the MLLP
connection's StreamReaderProtocol) and encrypts what it writes through ``TLSTransport``. The
client's close_notify, or a FIN without one (clients that never send it: a truncation cannot
cut a frame here, an unfinished frame is never answered), is an end of stream for the
reader, and the writer keeps working until the listener closes.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

READ_SIZE = 65536


class TLSServerProtocol(asyncio.Protocol):
    """The plain connection's protocol: the handshake (``handshake``, a future), then the
    application's data both ways. ``app`` is connected once the handshake is done."""

    def __init__(self, context: ssl.SSLContext, app: asyncio.Protocol,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.context = context
        self.app = app
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.handshake: asyncio.Future[None] = loop.create_future()
        # its failure is read by ``_accept_tls``, unless that gave up first (a timeout)
        self.handshake.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.transport: asyncio.Transport | None = None
        self.app_transport = TLSTransport(self)
        self.connected = False  # the handshake done, ``app`` told
        self.peer_done = False  # the client's close_notify or FIN read: its side is closed
        self.closing = False  # ours closed (close_notify sent)
        self.backlog: list[bytes] = []  # writes waiting for the peer (a renegotiation)
        # the client's first bytes (8 at most, never stored nor logged): what a failed
        # handshake was opened with, to say what the peer spoke instead of TLS
        self.opening = b""

    # -- the plain transport's events ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if len(self.opening) < 8 and not self.connected:
            self.opening += data[:8 - len(self.opening)]
        self.incoming.write(data)
        if not self.connected:
            self._do_handshake()
        if self.connected:
            self._read()

    def eof_received(self) -> bool:
        """The client's FIN: what it sent before is read, then the reader's end of stream;
        the transport stays open for our answers (True). OpenSSL is not told of the EOF:
        a FIN without close_notify is a fatal error to it (UNEXPECTED_EOF_WHILE_READING),
        after which it refuses to write the ACK; bytes of an unfinished record are left
        unread, as an unfinished frame is never answered."""
        if not self.connected:  # what it sent is handled already: its handshake is cut
            self._fail(ConnectionResetError("the peer closed the connection during the "
                                            "handshake"))
            return False
        self._read()
        self._end_of_stream()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc or ConnectionResetError(
                "the peer closed the connection during the handshake"))
        if self.connected:
            self.connected = False
            self.app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.connected:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self.connected:
            self.app.resume_writing()

    # -- TLS -------------------------------------------------------------------------------

    def _do_handshake(self) -> None:
        try:
            self.sslobj.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except Exception as exc:  # noqa: BLE001 - ssl.SSLError and kin: the handshake's end
            self._flush()  # its alert, for the client to know why
            self._fail(exc)
            return
        self._flush()
        self.connected = True
        self.app.connection_made(self.app_transport)
        if not self.handshake.done():
            self.handshake.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if not self.handshake.done():
            self.handshake.set_exception(exc)
        if self.transport is not None:
            self.transport.close()

    def _read(self) -> None:
        """Decrypt what arrived into the application; its end of stream at the client's
        close_notify, or at a FIN (with or without close_notify)."""
        chunks: list[bytes] = []
        ended = False
        try:
            while True:
                chunk = self.sslobj.read(READ_SIZE)
                if not chunk:  # close_notify
                    ended = True
                    break
                chunks.append(chunk)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:  # close_notify
            ended = True
        except ssl.SSLError as exc:  # a corrupt record, a bad MAC: the connection ends
            if chunks:
                self.app.data_received(b"".join(chunks))
            self._flush()
            if self.transport is not None:
                self.transport.abort()
            self._lost(exc)
            return
        if chunks:
            self.app.data_received(b"".join(chunks))
        if ended:
            self._end_of_stream()
        self._write_backlog()
        self._flush()

    def _end_of_stream(self) -> None:
        """The client will send nothing more (close_notify or FIN): the reader's end."""
        if self.connected and not self.peer_done:
            self.peer_done = True
            self.app.eof_received()  # its return value: we keep writing whatever it says

    def _lost(self, exc: BaseException) -> None:
        if self.connected:
            self.connected = False
            self.app.connection_lost(exc if isinstance(exc, Exception) else None)

    def write(self, data: bytes) -> None:
        if self.closing or self.transport is None or self.transport.is_closing():
            return
        self.backlog.append(bytes(data))
        self._write_backlog()
        self._flush()

    def _write_backlog(self) -> None:
        while self.backlog and not self.closing:
            data = self.backlog[0]
            try:
                written = self.sslobj.write(data)
            except ssl.SSLWantReadError:  # a renegotiation: after the peer's next records
                return
            except ssl.SSLError as exc:
                self.backlog.clear()
                if self.transport is not None:
                    self.transport.abort()
                self._lost(exc)
                return
            if written < len(data):
                self.backlog[0] = data[written:]
            else:
                del self.backlog[0]

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        """Our close_notify, then the plain transport closed once written (not waiting for
        the client's: RFC 8446 6.1 does not require it)."""
        if self.closing:
            return
        self._write_backlog()
        self.closing = True
        try:
            self.sslobj.unwrap()
        except (ssl.SSLError, ValueError):  # WantRead: the client's close_notify not in yet
            pass
        self._flush()
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class TLSTransport(asyncio.Transport):
    """What the application's StreamReader and StreamWriter see: writes are encrypted,
    flow control and extra information are the plain transport's (with the TLS ones)."""

    def __init__(self, tls: TLSServerProtocol) -> None:
        super().__init__()
        self._tls = tls

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        tls = self._tls
        if name == "ssl_object":
            return tls.sslobj
        if name == "sslcontext":
            return tls.context
        if name == "peercert":
            return tls.sslobj.getpeercert()
        if name == "cipher":
            return tls.sslobj.cipher()
        if name == "compression":
            return tls.sslobj.compression()
        return tls.transport.get_extra_info(name, default) if tls.transport else default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._tls.write(bytes(data))

    def writelines(self, list_of_data) -> None:  # noqa: ANN001
        self._tls.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        tls = self._tls
        return tls.closing or tls.transport is None or tls.transport.is_closing()

    def close(self) -> None:
        self._tls.close()

    def abort(self) -> None:
        self._tls.abort()

    def pause_reading(self) -> None:
        if self._tls.transport is not None:
            self._tls.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._tls.transport is not None:
            self._tls.transport.resume_reading()

    def is_reading(self) -> bool:
        return self._tls.transport is not None and self._tls.transport.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if self._tls.transport is not None:
            self._tls.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        tls = self._tls
        waiting = sum(len(b) for b in tls.backlog)
        return waiting + (tls.transport.get_write_buffer_size() if tls.transport else 0)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._tls.app

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._tls.app = protocol
