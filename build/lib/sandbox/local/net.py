"""Loopback port checks for the local stack's servers: is a port accepting, wait until it is not.

A server's ``stop()`` closes its listening socket and then calls :func:`wait_port_closed`, so a
caller that connects right after ``stop()`` returns is refused. The check is a real connect: it
also catches a copy of the socket that outlived ``close()`` (a forked child holding the fd).
"""

from __future__ import annotations

import logging
import socket
import time

log = logging.getLogger("erpsync.local")


def _probe_address(host: str) -> tuple[int, str]:
    """The address family and host to connect to for a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return socket.AF_INET, "127.0.0.1"
    if host == "::":
        return socket.AF_INET6, "::1"
    return (socket.AF_INET6 if ":" in host else socket.AF_INET), host


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``.

    A connect to a closed port in the ephemeral range can, rarely, succeed without any listener:
    the kernel may pick the same port as the source and the socket connects to itself (TCP
    simultaneous open). That is not a listener and counts as refused here.
    """
    family, addr = _probe_address(host)
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        if s.connect_ex((addr, port)) != 0:
            return False
        try:
            return bool(s.getsockname()[:2] != s.getpeername()[:2])
        except OSError:  # reset between the connect and the check: nobody is listening
            return False


def wait_port_closed(host: str, port: int, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll until ``host:port`` refuses connections (True) or ``timeout`` passes (False, logged)."""
    deadline = time.monotonic() + timeout
    while port_accepts(host, port):
        if time.monotonic() >= deadline:
            log.warning("%s:%s still accepts connections %.1fs after its server stopped", host, port, timeout)
            return False
        time.sleep(interval)
    return True
