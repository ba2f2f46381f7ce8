"""The library's side for the content tests: a content folder with its signing key and server, and a bookcase
config with a [content] table."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config import Config, load_config
from kiosk.content.authoring import sign
from kiosk.content.manifest import MANIFEST, SIGNATURE, Manifest, public_key, public_text
from kiosk.content.server import ContentServer
from kiosk.content.store import ContentStore
from simulators.fleet.bookcases import toml_value, write_fleet_config

VIDEO = "video/intro.mp4"

SOURCE = """\
library = "minhang"
fallback = ["intro"]

[[items]]
id = "intro"
kind = "video"
asset = "video/intro.mp4"
duration_s = 30

[[items]]
id = "winter"
kind = "image"
asset = "img/winter.png"
priority = 10
[items.when]
from = 2026-12-01
until = "2026-12-31"
days = ["sat", "sun"]
times = ["09:00-12:00", "13:00-24:00"]

[[items]]
id = "book-1"
kind = "book"
title = {zh = "红楼梦", en = "Dream of the Red Chamber"}
author = "曹雪芹"
why = "馆员推荐"
where = "3 号门"
cover = "img/cover.jpg"

[[items]]
id = "wechat"
kind = "qr"
title = "关注图书馆公众号"
url = "https://example.org/wechat"
"""


def write_folder(folder: Path, source: str = SOURCE, sizes: dict[str, int] | None = None, seed: int = 1) -> Path:
    """A content folder: ``content.toml`` and the assets it names, of the given sizes (any bytes do)."""
    sizes = sizes or {"video/intro.mp4": 300_000, "img/winter.png": 40_000, "img/cover.jpg": 12_345}
    for path, size in sizes.items():
        file = folder / path
        file.parent.mkdir(parents=True, exist_ok=True)
        block = hashlib.sha256(f"{seed}:{path}".encode()).digest()
        file.write_bytes((block * (size // len(block) + 1))[:size])
    (folder / "content.toml").write_text(source, encoding="utf-8")
    return folder


def content_config(folder: Path, keys: list[str], url: str | None, mqtt: dict | None = None, bookcase: str = "MH-C",
                   **content) -> Config:
    """A bookcase config with a [content] section (and [mqtt] if given), data under ``folder/data``."""
    path = write_fleet_config(folder, bookcase, "内容测试书柜", mqtt, doors=1)
    lines = ["[content]", f"public_keys = [{', '.join(toml_value(k) for k in keys)}]"]
    lines += [f"url = {toml_value(url)}"] if url else []
    lines += [f"{k} = {toml_value(v)}" for k, v in {"max_kbps": 0, **content}.items()]
    with path.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return load_config(path)


class Library:
    """The library's side: a content folder, its signing key and a server for it."""

    def __init__(self, folder: Path) -> None:
        self.folder = write_folder(folder)
        self.key = Ed25519PrivateKey.generate()
        self.public = public_text(self.key)
        self.server = ContentServer(folder).start()

    def publish(self, version: int, **changes: bytes) -> Manifest:
        """Change the files given (path -> bytes) and sign ``version``."""
        for path, data in changes.items():
            (self.folder / path).write_bytes(data)
        return sign(self.folder, self.key, version)

    def asset_requests(self) -> list:
        return [s for s in self.server.served if s.path not in (MANIFEST, SIGNATURE)]


def content_store(config: Config) -> ContentStore:
    return ContentStore(config.content_dir, tuple(public_key(k) for k in config.content.public_keys))


def new_bytes(size: int, seed: int) -> bytes:
    return (seed.to_bytes(2, "big") * (size // 2 + 1))[:size]
