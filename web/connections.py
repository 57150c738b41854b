"""Connections that cannot hold the server's file descriptors: a header-read timeout and a connection cap.

uvicorn waits as long as a client likes for a request's headers, and accepts every connection: clients that
open connections and send nothing (or a byte at a time) could hold every file descriptor the server has,
without a token. :func:`guarded_protocol` gives uvicorn's HTTP protocol (httptools) two bounds:

- a request's headers must arrive within ``header_seconds`` of the connection (or of the request's first
  byte, on a kept-alive connection), else the connection is closed;
- past ``max_connections`` open connections, a new one is closed at once.

An authenticated client's slow *body* is bounded by the upload size limits (:mod:`.uploads`) and uvicorn's
flow control; a reverse proxy in front (TLS, rate limits per address) remains the place for a public
deployment's further limits.
"""

HEADER_SECONDS = 10.0
MAX_CONNECTIONS = 1000


def guarded_protocol(header_seconds: float = HEADER_SECONDS, max_connections: int = MAX_CONNECTIONS) -> type:
    """uvicorn's httptools protocol with a header-read timeout and a connection cap (pass it as ``http=``)."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedProtocol(HttpToolsProtocol):
        _header_timer = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.close()  # connection_lost takes it out of self.connections
                return
            self._await_headers()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._await_headers()

        def on_headers_complete(self) -> None:
            self._headers_arrived()
            super().on_headers_complete()

        def connection_lost(self, exc) -> None:
            self._headers_arrived()
            super().connection_lost(exc)

        def _await_headers(self) -> None:
            self._headers_arrived()
            self._header_timer = self.loop.call_later(header_seconds, self._too_slow)

        def _headers_arrived(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _too_slow(self) -> None:
            self._header_timer = None
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedProtocol
