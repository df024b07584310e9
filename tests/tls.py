"""A throwaway CA and a server certificate for 127.0.0.1, made with openssl, for TLS tests."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True)


def make_ca_and_cert(d: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate it signed for 127.0.0.1."""
    ca_key, ca, key, csr, cert = (
        d / n for n in ("ca.key", "ca.crt", "srv.key", "srv.csr", "srv.crt")
    )
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=waystation test CA", "-keyout", ca_key, "-out", ca)  # fmt: skip
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", key, "-out", csr)  # fmt: skip
    ext = d / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "2", "-extfile", ext, "-out", cert)  # fmt: skip
    return ca, cert, key
