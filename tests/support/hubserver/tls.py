"""A throwaway certificate for serving the fake Hub over HTTPS on loopback.

Made with the `openssl` command (no Python package needed): a self-signed certificate for
`localhost` and `127.0.0.1`, the two origins of a `HubServer`. Clients trust it through
`SSL_CERT_FILE` (huggingface_hub's client and `hf`), `--ca-certificate` (aria2c) or `--cacert` (curl).
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Certificate:
    """A certificate and its key, as PEM files; `bundle` is the system's CA bundle plus it.

    Point `SSL_CERT_FILE` at `bundle`, not `cert`: a client then loads as many CAs as it does
    against the real Hub (about 0.02 s of start-up), and trusts this server too.
    """

    cert: Path
    key: Path
    bundle: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def openssl_missing() -> str | None:
    """Why no certificate can be made here, or None."""
    return None if shutil.which("openssl") else "the `openssl` command is not installed"


def make_certificate(folder: Path) -> Certificate:
    """Write a fresh self-signed certificate for localhost and 127.0.0.1 into `folder`.

    Raises:
        RuntimeError: `openssl` is missing or failed.
    """
    why = openssl_missing()
    if why is not None:
        raise RuntimeError(why)
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "hub-cert.pem", folder / "hub-key.pem"
    command = [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-keyout", str(key), "-out", str(cert),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl could not make a certificate: {done.stderr.strip()[-300:]}")
    system = ssl.get_default_verify_paths().openssl_cafile
    bundle = folder / "ca-bundle.pem"
    with bundle.open("wb") as out:
        if Path(system).is_file():
            out.write(Path(system).read_bytes().rstrip(b"\n") + b"\n")
        out.write(cert.read_bytes())
    return Certificate(cert, key, bundle)
