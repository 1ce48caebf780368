"""Real receivers on loopback for the alerting tests: an aiosmtpd SMTP server with AUTH, an HTTP
server whose faults (errors, slowness, a stall) are scripted per request, and writers of the
incidents/metrics/templates datasets exactly as docs/datasets.md specifies them."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import free_port
from dashboard_fixtures import INCIDENTS_SCHEMA, METRICS_SCHEMA, TEMPLATES_SCHEMA

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def incident(
    n: int,
    *,
    service: str = "api",
    severity: str = "critical",
    start_min: int = 0,
    minutes: int = 3,
    metric: str = "error_rate",
    at: datetime | None = None,
) -> dict:
    """One incident row starting `start_min` minutes after `at` (default T0)."""
    start = (at or T0) + timedelta(minutes=start_min)
    return {
        "incident_id": f"inc{n:05d}",
        "start": start,
        "end": start + timedelta(minutes=minutes),
        "peak_ts": start + timedelta(minutes=1),
        "detector": "robust_zscore",
        "metric": metric,
        "series": f"service={service}",
        "service": service,
        "host": None,
        "level": None,
        "template_id": None,
        "observed": 0.31,
        "expected": 0.02,
        "lower": 0.0,
        "upper": 0.05,
        "score": 9.5,
        "severity": severity,
        "buckets": minutes,
        "template": "upstream <*> timed out after <*> ms",
        "examples": [f"upstream payments-{n} timed out after 3000 ms"],
    }


def write_incidents(data_dir: Path, rows: list[dict], name: str = "part-0.parquet") -> None:
    out = data_dir / "incidents"
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=INCIDENTS_SCHEMA), out / name)


def write_metrics(data_dir: Path, rows: list[dict]) -> None:
    out = data_dir / "metrics" / f"date={T0.date()}"
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=METRICS_SCHEMA), out / "part-0.parquet")


def write_templates(data_dir: Path, rows: list[dict]) -> None:
    out = data_dir / "templates"
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=TEMPLATES_SCHEMA), out / "templates.parquet")


# --- SMTP -----------------------------------------------------------------------------------


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "auth": session.auth_data,
                "message": message_from_bytes(envelope.content, policy=policy.default),
            }
        )
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 that accepts AUTH PLAIN/LOGIN for one user; without `tls` in plain
    text, with it only after STARTTLS."""

    def __init__(
        self,
        user: str = "alerts",
        password: str = "s3cret-pw",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.mailbox = _Mailbox()
        self.user, self.password = user, password

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            ) == (self.user, self.password)
            return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)

        self.port = free_port()
        self.controller = Controller(
            self.mailbox,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            auth_require_tls=tls is not None,
            tls_context=tls,
            require_starttls=tls is not None,
        )

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[dict]:
        return self.mailbox.messages


# --- HTTP -----------------------------------------------------------------------------------


@dataclass
class Script:
    """What the HTTP server does per request: the first `fail` requests get 503, the first `slow`
    ones wait `slow_secs` before answering, and with `stall` the first request waits until
    `release` is set (at most 30 s). Failures answer `status`."""

    fail: int = 0
    status: int = 503
    slow: int = 0
    slow_secs: float = 0.0
    stall: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class HttpServer:
    """A real HTTP server on 127.0.0.1 recording every POST (path, headers, JSON body)."""

    def __init__(
        self,
        script: Script | None = None,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.script = script or Script()
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    index = len(outer.requests)
                    outer.requests.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "json": json.loads(body),
                            "answered": False,
                        }
                    )
                s = outer.script
                if s.stall and index == 0:
                    s.arrived.set()
                    s.release.wait(30)
                if index < s.slow:
                    time.sleep(s.slow_secs)
                code = s.status if index < s.fail else 200
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    outer.requests[index]["answered"] = code == 200
                except OSError:
                    pass  # the client gave up (timeout) or was killed

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> HttpServer:
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.script.release.set()
        self.server.shutdown()
        self.server.server_close()

    def keys(self) -> list[str]:
        return [r["headers"].get("idempotency-key") for r in self.requests]


def read_history(data_dir: Path) -> list[dict]:
    files = sorted((data_dir / "alerts" / "history").glob("*.parquet"))
    if not files:
        return []
    return pa.concat_tables([pq.read_table(f) for f in files]).to_pylist()


# --- a private CA -----------------------------------------------------------------------------


@dataclass
class PrivateCa:
    """A CA made for one test, and a server certificate for 127.0.0.1 and localhost it signed."""

    ca_pem: Path
    cert_pem: Path
    key_pem: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_pem, self.key_pem)
        return ctx


def make_private_ca(tmp: Path) -> PrivateCa | None:
    """Uses the `openssl` command (None when it is missing): a CA with CA:TRUE, and a leaf with
    CA:FALSE and the loopback names, as a private PKI would issue."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60, cwd=tmp)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=loglens test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    )
    (tmp / "leaf.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    )
    return PrivateCa(tmp / "ca.pem", tmp / "server.pem", tmp / "server.key")
