"""Runs the Python `hibp-downloader` against a local hibp-mirror instead of the public API.

Usage: incremental_downloader.py BASE_URL DATA_PATH FIRST LAST

hibp-downloader has no base-URL option: this wrapper sets its module constant before the CLI
starts (worker processes are forked and inherit it). Every network connection to anything but
loopback is refused, so nothing can reach the public API. The downloader keeps a prefix -> ETag
file under DATA_PATH and sends If-None-Match on the next run; `--local-cache-ttl 0` makes it ask
the server every time instead of trusting its local cache.
"""

import socket
import sys

_connect = socket.socket.connect


def _loopback_only(self, address):
    if self.family == socket.AF_UNIX:  # multiprocessing's manager, a local socket file
        return _connect(self, address)
    host = address[0] if isinstance(address, tuple) else address
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ConnectionRefusedError(f"refusing non-loopback connection to {host!r}")
    return _connect(self, address)


socket.socket.connect = _loopback_only

import hibp_downloader  # noqa: E402
import hibp_downloader.commands.hibp_download as download  # noqa: E402

base, data_path, first, last = sys.argv[1:5]
hibp_downloader.PWNEDPASSWORDS_API_URL = base
download.PWNEDPASSWORDS_API_URL = base

from hibp_downloader.main import entrypoint  # noqa: E402

sys.argv = [
    "hibp-downloader", "--data-path", data_path, "download",
    "--first-hash", first, "--last-hash", last,
    "--local-cache-ttl", "0", "--processes", "2",
]
sys.exit(entrypoint())
