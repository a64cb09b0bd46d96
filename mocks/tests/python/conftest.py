"""Fixtures that run the real `harness mock ...` binary on ephemeral ports.

The binary comes from $HARNESS_BIN, else $CARGO_TARGET_DIR/debug/harness, else target/debug/harness
at the workspace root. Each mock prints one JSON line with its bound addresses; we read it instead of
guessing ports. Every mock is stopped with SIGTERM and must exit 0.
"""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import pathlib
import select
import signal
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


def harness_bin() -> str:
    if os.environ.get("HARNESS_BIN"):
        return os.environ["HARNESS_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR") or str(ROOT / "target")
    return str(pathlib.Path(target) / "debug" / "harness")


class Mock:
    def __init__(self, proc: subprocess.Popen, info: dict):
        self.proc = proc
        self.info = info

    def addr(self, key: str = "http") -> str:
        return self.info[key]

    def port(self, key: str = "http") -> int:
        return int(self.info[key].rsplit(":", 1)[1])

    def url(self, path: str = "", key: str = "http") -> str:
        scheme = "https" if key == "https" else "http"
        return f"{scheme}://{self.info[key]}{path}"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mock did not stop within 10 s of SIGTERM")
        return self.proc.returncode


def run_mock(args: list[str], env: dict | None = None, timeout: float = 15.0) -> Mock:
    """Starts `harness mock ARGS` bound to 127.0.0.1 and waits for its address line."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MP_")}
    full_env.update(env or {})
    proc = subprocess.Popen(
        [harness_bin(), "mock", *args, "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=full_env,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line:
                return Mock(proc, json.loads(line))
        if proc.poll() is not None:
            raise AssertionError(
                f"mock exited with {proc.returncode}: {proc.stderr.read().decode()}"
            )
    proc.kill()
    raise AssertionError("mock printed no address line in time")


def run_failing(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MP_")}
    full_env.update(env or {})
    return subprocess.run(
        [harness_bin(), "mock", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=20,
    )


@pytest.fixture
def mock_factory():
    started: list[Mock] = []

    def start(args, env=None):
        m = run_mock(args, env)
        started.append(m)
        return m

    yield start
    codes = [m.stop() for m in started]
    assert all(c == 0 for c in codes), f"mocks exited with {codes}"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = tmp_path_factory.mktemp("tls")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harness-mocks test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = d / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem = d / "server.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = d / "server.key"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return {"ca": str(ca_pem), "cert": str(cert_pem), "key": str(key_pem)}
