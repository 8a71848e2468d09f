"""A TCP proxy to put between one process and PostgreSQL, to cut the database off and bring it back.

`cut()` closes every forwarded connection and stops listening (new connections are refused at once, as
when the database host is gone); `restore()` listens again on the same port. Threads only, no asyncio.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading

from serving import free_port

CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`, one pair of pump threads per connection."""

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5432), port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.accepted = 0

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.cut()

    def url_for(self, database_url: str) -> str:
        """The same database URL, through this proxy."""
        host, port = self.target
        assert f"@{host}:{port}/" in database_url, database_url
        return database_url.replace(f"@{host}:{port}/", f"@127.0.0.1:{self.port}/", 1)

    def start(self) -> TcpProxy:
        """Listen (again) on the same port and forward every connection."""
        assert self._listener is None, "already listening"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, args=(listener, self._stop), daemon=True)
        self._acceptor.start()
        return self

    restore = start

    def cut(self) -> None:
        """Stop listening and close every forwarded connection, both sides, at once."""
        listener, self._listener = self._listener, None
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None
        if listener is not None:
            listener.close()
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            _close(sock)

    @property
    def listening(self) -> bool:
        return self._listener is not None

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._sockets) // 2

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(listener, selectors.EVENT_READ)
            while not stop.is_set():
                if not sel.select(timeout=0.05):
                    continue
                try:
                    client, _ = listener.accept()
                except OSError:
                    continue
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                except OSError:
                    _close(client)
                    continue
                upstream.settimeout(None)
                with self._lock:
                    if stop.is_set():  # cut while this connection was being made
                        _close(client)
                        _close(upstream)
                        return
                    self._sockets |= {client, upstream}
                    self.accepted += 1
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets -= {src, dst}
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
