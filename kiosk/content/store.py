"""The content folder on the bookcase: verified assets by hash, and the manifest now playing, swapped atomically.

    <root>/objects/<sha256>          an asset whose bytes hash to its name (written only once verified)
    <root>/objects/<sha256>.part     an asset still downloading (a later attempt resumes from its length)
    <root>/versions/<version>/       manifest.json and manifest.sig, as the library signed them
    <root>/current -> versions/<n>   the content on screen: one symlink, replaced in one rename

Installing a manifest never touches what plays until every asset is in ``objects/`` with the right hash;
then ``current`` is replaced by ``rename(2)``, so a pulled plug leaves either the old content or the new,
never a mix. The previous version is kept (and its assets) so a bad swap can be looked into; older ones
and their assets are removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kiosk.content import ContentError
from kiosk.content.manifest import MANIFEST, SIGNATURE, Manifest, verify

LOGGER = logging.getLogger(__name__)

CHUNK = 1 << 20
KEEP_VERSIONS = 2


@dataclass(frozen=True)
class Installed:
    """A verified manifest on disk and where its assets are."""
    manifest: Manifest
    objects: Path

    @property
    def version(self) -> int:
        return self.manifest.version

    def path(self, asset: str) -> Path:
        """The file of ``asset`` (a path named in the manifest)."""
        return self.objects / self.manifest.assets[asset].sha256


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ContentStore:
    def __init__(self, root: Path, keys: tuple[Ed25519PublicKey, ...]) -> None:
        self.root = Path(root)
        self.keys = keys
        self.objects = self.root / "objects"
        self.versions = self.root / "versions"
        self.current_link = self.root / "current"

    def prepare(self) -> None:
        self.objects.mkdir(parents=True, exist_ok=True)
        self.versions.mkdir(parents=True, exist_ok=True)

    # --- reading ---------------------------------------------------------------------------------

    def generation(self) -> str | None:
        """Changes whenever ``current`` is swapped (cheap enough to ask every second); None: no content."""
        try:
            return os.readlink(self.current_link)
        except OSError:
            return None

    def current(self) -> Installed | None:
        """The content now installed, checked again against the keys; None if there is none. A current
        version that no longer verifies (a damaged SD card) raises ContentError."""
        if self.generation() is None:
            return None
        folder = self.current_link
        try:
            raw = (folder / MANIFEST).read_bytes()
            sig = (folder / SIGNATURE).read_bytes()
        except OSError as exc:
            raise ContentError(f"the installed content cannot be read: {exc}") from None
        manifest = verify(raw, sig, self.keys)
        missing = [a.path for a in manifest.assets.values() if not (self.objects / a.sha256).is_file()]
        if missing:
            raise ContentError(f"the installed content lacks {len(missing)} file(s): {', '.join(missing[:3])}")
        return Installed(manifest, self.objects)

    def current_version(self) -> int:
        """The version installed, 0 if none (or if it cannot be read)."""
        try:
            found = self.current()
        except ContentError:
            return 0
        return found.version if found else 0

    # --- writing (the updater's) -----------------------------------------------------------------

    def object_path(self, sha256: str) -> Path:
        return self.objects / sha256

    def part_path(self, sha256: str) -> Path:
        return self.objects / f"{sha256}.part"

    def has(self, sha256: str) -> bool:
        return self.object_path(sha256).is_file()

    def admit(self, part: Path, sha256: str) -> None:
        """Move a finished download into ``objects/`` if its bytes hash to ``sha256``; else delete it and
        raise ContentError."""
        actual = sha256_file(part)
        if actual != sha256:
            part.unlink(missing_ok=True)
            raise ContentError(f"a downloaded file hashes to {actual[:12]}…, not the manifest's {sha256[:12]}…: "
                               "refused")
        with part.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(part, self.object_path(sha256))

    def install(self, raw: bytes, signature: bytes) -> Installed:
        """Verify the manifest and that every asset is present, then make it current in one rename."""
        manifest = verify(raw, signature, self.keys)
        missing = [a.path for a in manifest.assets.values() if not self.has(a.sha256)]
        if missing:
            raise ContentError(f"cannot install version {manifest.version}: {len(missing)} file(s) not downloaded "
                               f"({', '.join(missing[:3])})")
        self.prepare()
        folder = self.versions / str(manifest.version)
        staging = self.versions / f".{manifest.version}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, data in ((MANIFEST, raw), (SIGNATURE, signature)):
            with (staging / name).open("wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
        link = self.root / ".current.tmp"
        link.unlink(missing_ok=True)
        link.symlink_to(Path("versions") / str(manifest.version))
        os.replace(link, self.current_link)
        _fsync_dir(self.root)
        LOGGER.info("content version %d installed: %d items, %d files", manifest.version, len(manifest.items),
                    len(manifest.assets))
        self.collect()
        return Installed(manifest, self.objects)

    def collect(self) -> None:
        """Remove versions older than the last ``KEEP_VERSIONS`` and every object none of them uses. Partial
        downloads stay: the next manifest may well want them."""
        kept: set[str] = set()
        versions = sorted((p for p in self.versions.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        for folder in versions[:-KEEP_VERSIONS]:
            shutil.rmtree(folder, ignore_errors=True)
        for folder in versions[-KEEP_VERSIONS:]:
            try:
                manifest = verify((folder / MANIFEST).read_bytes(), (folder / SIGNATURE).read_bytes(), self.keys)
            except (OSError, ContentError):
                continue
            kept.update(a.sha256 for a in manifest.assets.values())
        for obj in self.objects.iterdir():
            if not obj.name.endswith(".part") and obj.name not in kept:
                obj.unlink(missing_ok=True)
