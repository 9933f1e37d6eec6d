"""moto's HTTP server in the harness's process, for the Node.js functions' AWS SDK v3 calls.

The server dispatches to moto's backends, the same ones the in-process `mock_aws` of
harness/stepfunctions.py serves: an object the stand-in writes through boto3 is the object a
Node function lists over HTTP. Started once per session, on a free loopback port.
"""

from __future__ import annotations

import threading

from moto.server import ThreadedMotoServer

# The services the integ stacks' assertions call in moto (Personalize goes to the stand-in,
# Step Functions and Lambda to the harness's own endpoints).
SERVICES = ("S3", "SQS", "SSM")


class MotoServer:
    _instance: MotoServer | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> MotoServer:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def environment(self) -> dict[str, str]:
        """AWS_ENDPOINT_URL_<SERVICE> for each service it serves to the Node functions."""
        return {f"AWS_ENDPOINT_URL_{service}": self.endpoint_url for service in SERVICES}
