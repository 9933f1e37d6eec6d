"""CloudFormation's side of a custom resource's ResponseURL: a local HTTPS endpoint.

cfn-response.js sends with Node's `https` and drops any port from the URL, so the endpoint
listens on 127.0.0.1:443 with a certificate made at test time; Node trusts it through
NODE_EXTRA_CA_CERTS, so TLS checking stays on. A response body of 4096 bytes or more is
refused as CloudFormation refuses it, and the resource fails with CloudFormation's message.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, cast

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from local_server import LocalServer

from harness.clock import Sleeper, VirtualClock

PORT = 443
# cfn-response.js always sends to port 443: each test process takes a loopback address of its
# own (all of 127.0.0.0/8 is this machine), so parallel runs don't collide.
HOSTS = [f"127.0.0.{last}" for last in range(1, 255)]
MAX_RESPONSE_BYTES = 4096
TOO_LONG = "Response object is too long."


@dataclass(frozen=True)
class Response:
    """What the provider answered CloudFormation (the parsed PUT body)."""

    status: str
    reason: str
    physical_id: str
    data: dict[str, Any]
    size: int
    raw: dict[str, Any]


def make_certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for `host` and localhost: (certificate PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudformation-harness")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "harness-ca.pem", folder / "harness-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class WaitHandle:
    """An AWS::CloudFormation::WaitConditionHandle: the signals its presigned URL received."""

    signals: dict[str, dict[str, Any]]
    waiter: Sleeper | None = None
    count: int = 1

    def outcome(self) -> dict[str, Any] | None:
        """The first FAILURE, or every signal once `count` SUCCESS ones arrived; else None."""
        failures = [signal for signal in self.signals.values() if signal["Status"] == "FAILURE"]
        if failures:
            return failures[0]
        if len(self.signals) >= self.count:
            return {"Status": "SUCCESS", "Signals": dict(self.signals)}
        return None


class ResponseEndpoint:
    """Pending ResponseURLs, each answered once; the waiter sleeps on the virtual clock.

    Also the WaitConditionHandles' presigned URLs: a signal is a PUT with an empty Content-Type
    (any other is answered 403 SignatureDoesNotMatch, as S3 answers a presigned URL signed
    without one) and the body {"Status", "UniqueId", "Data", "Reason"}; a repeated UniqueId is
    ignored.
    """

    def __init__(self, clock: VirtualClock, folder: Path) -> None:
        self.clock = clock
        self._pending: dict[str, Sleeper] = {}
        self._handles: dict[str, WaitHandle] = {}
        self._lock = threading.Lock()
        self._server = _bind(self)
        self.host = str(self._server.server_address[0])
        self.certificate, key = make_certificate(folder, self.host)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def new_url(self, sleeper: Sleeper, label: str) -> str:
        """A fresh presigned-looking ResponseURL whose PUT ends `sleeper`'s wait."""
        path = f"/cloudformation-response/{label}/{uuid.uuid4()}"
        with self._lock:
            self._pending[path] = sleeper
        return f"https://{self.host}{path}?X-Amz-Signature=harness"

    def new_handle(self, label: str) -> str:
        """A WaitConditionHandle's presigned URL."""
        path = f"/waitcondition/{label}/{uuid.uuid4()}"
        with self._lock:
            self._handles[path] = WaitHandle({})
        return f"https://{self.host}{path}?X-Amz-Signature=harness"

    def wait_condition(self, url: str, count: int, timeout: float) -> dict[str, Any] | None:
        """Wait (as an actor) for a handle's signals; None when Timeout passes first."""
        handle = self._handles[url.split("?", 1)[0].removeprefix(f"https://{self.host}")]
        with self.clock.actor():
            sleeper = self.clock.sleeper(timeout)
            with self._lock:
                handle.count, handle.waiter = count, sleeper
                done = handle.outcome()
            if done is not None:
                return done
            result: dict[str, Any] | None = self.clock.wait(sleeper)
            return result

    def signal(self, path: str, body: bytes, content_type: str | None) -> int:
        if content_type:
            return 403
        signal = json.loads(body)
        if signal.get("Status") not in ("SUCCESS", "FAILURE"):
            return 400
        with self._lock:
            handle = self._handles[path]
            handle.signals.setdefault(str(signal.get("UniqueId")), signal)
            done = handle.outcome()
            waiter = handle.waiter
        if done is not None and waiter is not None:
            self.clock.wake_early(waiter, done)
        return 200

    def signals(self, url: str) -> dict[str, dict[str, Any]]:
        path = url.split("?", 1)[0].removeprefix(f"https://{self.host}")
        with self._lock:
            return dict(self._handles[path].signals)

    def answer(self, path: str, body: bytes, content_type: str | None = None) -> int:
        if path in self._handles:
            return self.signal(path, body, content_type)
        with self._lock:
            sleeper = self._pending.pop(path, None)
        if sleeper is None:
            return 403  # unknown or already answered: a presigned URL works once here
        self.clock.wake_early(sleeper, parse_response(body))
        return 200


def parse_response(body: bytes) -> Response:
    raw: dict[str, Any] = json.loads(body)
    if len(body) >= MAX_RESPONSE_BYTES:
        return Response(
            "FAILED", TOO_LONG, str(raw.get("PhysicalResourceId", "")), {}, len(body), raw
        )
    return Response(
        status=str(raw.get("Status")),
        reason=str(raw.get("Reason") or ""),
        physical_id=str(raw.get("PhysicalResourceId") or ""),
        data=dict(raw.get("Data") or {}),
        size=len(body),
        raw=raw,
    )


class _Server(LocalServer):
    def __init__(self, endpoint: ResponseEndpoint, host: str) -> None:
        super().__init__((host, PORT), _Handler)
        self.endpoint = endpoint


def _bind(endpoint: ResponseEndpoint) -> _Server:
    for host in HOSTS:
        try:
            return _Server(endpoint, host)
        except OSError:
            continue
    raise RuntimeError(f"no loopback address has port {PORT} free")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        endpoint = cast(_Server, self.server).endpoint
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?", 1)[0]
        status = endpoint.answer(path, body, self.headers.get("Content-Type"))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""
