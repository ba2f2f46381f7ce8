"""A throw-away certificate authority for the TLS tests: the broker's certificate and one per bookcase (openssl)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

from tests.support import require_binary


class Pki:
    """``folder/ca.crt`` plus ``issue(name)`` -> (cert, key) signed by it; EC P-256, valid for two days."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.openssl = require_binary("openssl")
        folder.mkdir(parents=True, exist_ok=True)
        self.ca, self.ca_key = folder / "ca.crt", folder / "ca.key"
        self._key(self.ca_key)
        self._run("req", "-x509", "-new", "-key", self.ca_key, "-sha256", "-days", "2",
                  "-subj", "/CN=City Bookcase test CA", "-out", self.ca)

    def issue(self, name: str, server: bool = False) -> tuple[Path, Path]:
        cert, key, csr = (self.folder / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
        ext = self.folder / f"{name}.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n" if server else "extendedKeyUsage=clientAuth\n")
        self._key(key)
        self._run("req", "-new", "-key", key, "-subj", f"/CN={name}", "-out", csr)
        self._run("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
                  "-days", "2", "-sha256", "-extfile", ext, "-out", cert)
        return cert, key

    def context(self, name: str | None) -> ssl.SSLContext:
        """A client-side TLS context trusting the CA, with ``name``'s certificate (None: no certificate)."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if name is not None:
            cert, key = self.folder / f"{name}.crt", self.folder / f"{name}.key"
            if not cert.exists():
                cert, key = self.issue(name)
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    def _key(self, path: Path) -> None:
        self._run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", path)
        path.chmod(0o600)

    def _run(self, *args: object) -> None:
        subprocess.run([self.openssl, *map(str, args)], check=True, capture_output=True, timeout=30)
