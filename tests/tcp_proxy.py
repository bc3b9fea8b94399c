"""A TCP proxy of the suite's own on a loopback port: forwards every connection to one address, so a test
can give the application (or the probe) an endpoint that the migration's repoint does not move.

It is also a fault injector for the link it carries, switched from the test's thread at any moment:

    pass    bytes flow (the default)
    stall   a black hole: every connection, current and new, stays open but no byte moves either way;
            back to `pass`, what was held flows on (as TCP delivers after a transient partition)
    drop    every current connection is closed (FIN) and every new one closed as soon as it is accepted
    reset   as `drop`, with RST instead of FIN (SO_LINGER 0): "connection reset by peer"
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

MODES = ("pass", "stall", "drop", "reset")


class _Pair:
    """One proxied connection: the client's socket and the server's, and how the fault proxy ended it."""

    def __init__(self, client: socket.socket, upstream: socket.socket):
        self.client, self.upstream = client, upstream
        self.ended: str | None = None  # drop | reset, once the proxy cut it

    def cut(self, how: str) -> None:
        """End both sides: wake the pipes (shutting down the reading side sends nothing), which then close with
        FIN, or with RST (SO_LINGER 0) for a reset. A socket another thread reads from is only really closed once
        that read returns, so the pipes close, not this thread."""
        self.ended = how
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                if how == "reset":
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD)

    def close(self) -> None:
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                if self.ended != "reset":
                    s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()


class TcpProxy:
    def __init__(self, to_host: str, to_port: int, *, host: str = "127.0.0.1", port: int = 0):
        self.to = (to_host, to_port)
        self._listener = socket.create_server((host, port))
        self.host = host
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._flowing = threading.Event()  # cleared while stalled
        self._flowing.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self.mode = "pass"
        self._armed: tuple[bytes, str] | None = None
        self.accepted = 0  # connections accepted since the start (a test can see that something came)
        threading.Thread(target=self._accept, daemon=True, name="tcp-proxy").start()

    def set(self, mode: str) -> None:
        """Switch the link to `mode` (see the module's docstring), for current and new connections."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            self.mode = mode
            victims = self._pairs if mode in ("drop", "reset") else []
            if mode in ("drop", "reset"):
                self._pairs = []
        if mode == "stall":
            self._flowing.clear()
        for pair in victims:
            pair.cut(mode)
        if mode != "stall":
            self._flowing.set()

    def arm(self, pattern: bytes, mode: str) -> None:
        """Switch to `mode` as soon as a client sends `pattern` (a statement's text: the fault lands exactly
        there, before the statement reaches the server)."""
        self._armed = (pattern, mode)

    def live_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.mode in ("drop", "reset"):
                doomed = _Pair(client, client)
                doomed.ended = self.mode
                if self.mode == "reset":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                doomed.close()
                continue
            try:
                upstream = socket.create_connection(self.to, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self._lock:
                self._pairs.append(pair)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(pair, a, b), daemon=True).start()

    def _pipe(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while pair.ended is None:
                self._flowing.wait()  # a stall holds the bytes: neither read nor forwarded
                data = src.recv(65536)
                if not data:
                    break
                armed = self._armed
                if armed and src is pair.client and armed[0] in data:
                    self._armed = None
                    self.set(armed[1])
                self._flowing.wait()  # read just before a stall began: held too
                if pair.ended is None:
                    dst.sendall(data)
        with self._lock:
            self._pairs = [p for p in self._pairs if p is not pair]
        pair.close()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._flowing.set()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            pair.cut("drop")

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
