"""A loopback TCP proxy that adds a fixed delay in each direction, to emulate a remote server."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


def _pump(src: socket.socket, dst: socket.socket, delay: float) -> None:
    try:
        while data := src.recv(65536):
            if delay:
                time.sleep(delay)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def latency_proxy(target_host: str, target_port: int, one_way_ms: float) -> Iterator[int]:
    """Listen on a free 127.0.0.1 port, forward to the target, delaying every chunk by ``one_way_ms``."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    stop = threading.Event()
    delay = one_way_ms / 1000

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((target_host, target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b, delay), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
