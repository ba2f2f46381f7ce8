"""Finding the real parts a test needs: a missing one fails the test (the bootstrap installs them all)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_binary(name: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.path.exists(p)), None)
    if path:
        return path
    pytest.fail(f"{name} is not installed (scripts/bootstrap.sh installs it)")
