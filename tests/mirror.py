"""A loopback HTTP mirror for the fetch tests: ``<root>/<host>/<path>`` served
on 127.0.0.1 (a free port), counting the requests it answers."""

import contextlib
import functools
import io
import tarfile
import threading
import types
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit


def served(root, url):
    """Where ``url`` lives in a mirror tree rooted at ``root``."""
    parts = urlsplit(url)
    return Path(root) / parts.netloc / parts.path.lstrip("/")


def add_bytes(tar, name, data, mtime=0):
    """Add a member with fixed metadata, so archives are reproducible."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = mtime
    tar.addfile(info, io.BytesIO(data))


class _Handler(SimpleHTTPRequestHandler):
    timeout = 10  # a stalled client cannot hold a server thread forever

    def do_GET(self):
        with self.server.lock:
            self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_directory(root):
    """Serve ``root`` on 127.0.0.1; yields ``.url`` and ``.requests`` (paths asked)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(_Handler, directory=str(root)))
    server.daemon_threads = True
    server.requests = []
    server.lock = threading.Lock()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield types.SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}",
                                    requests=server.requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
