"""The base of the test suite's local HTTP endpoints (the stand-in and the harness's services)."""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class LocalServer(ThreadingHTTPServer):
    """A threading HTTP server whose callers may hang up before their answer: a killed Node
    runtime, a client past its timeout, a dropped connection. That is no error of the
    endpoint's, and its traceback in the test output would read like one; any other error is
    still printed."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
