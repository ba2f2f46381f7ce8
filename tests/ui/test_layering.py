"""The screen is a view: kiosk/ui never reaches a driver, the sync link or the database (docs/design.md §2, §3)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from tests.scenarios.harness import ROOT

UI_DIR = ROOT / "kiosk" / "ui"
# Devices, the network and the database: what a view must never touch (the core loop alone writes SQLite).
FORBIDDEN = ("kiosk.drivers", "kiosk.sync", "kiosk.store", "kiosk.app", "kiosk.intents", "sqlite3", "sqlite_utils",
             "serial", "smartcard", "paho", "requests")


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """The forbidden modules ``source`` imports, at any depth (inside functions too)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found += [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    return found


def test_the_check_sees_imports_wherever_they_are():
    source = ("import os\ndef f():\n    from kiosk.drivers.lockboard import codec\n    import sqlite3\n"
              "from kiosk import sync\n")
    assert sorted(forbidden_imports(source)) == ["kiosk.drivers.lockboard", "kiosk.drivers.lockboard.codec",
                                                 "kiosk.sync", "sqlite3"]
    assert forbidden_imports("from kiosk.core.snapshot import Snapshot\nimport pygame\n") == []


def test_no_ui_module_imports_a_driver_the_sync_link_or_the_database():
    files = sorted(UI_DIR.rglob("*.py"))
    assert len(files) > 10
    bad = {str(path.relative_to(ROOT)): names for path in files
           if (names := forbidden_imports(path.read_text(encoding="utf-8"), str(path)))}
    assert not bad, f"kiosk/ui must stay a view: {bad}"


def test_importing_every_ui_module_loads_none_of_them():
    modules = [".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for path in sorted(UI_DIR.rglob("*.py"))]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} "
            f"or any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})))\n")
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"importing kiosk.ui loaded {result.stdout.strip()}"


def test_the_ui_writes_no_file_but_the_screenshot():
    """Besides `kiosk screenshot` saving its PNG, nothing in kiosk/ui writes a file or runs SQL."""
    writers = set()
    for path in sorted(UI_DIR.rglob("*.py")):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("write_text", "write_bytes", "save", "execute",
                                                                 "executemany", "executescript"):
                writers.add((where, node.attr))
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "open":
                modes = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                if any(set(m) & set("wax+") for m in modes):
                    writers.add((where, "open"))
    assert writers == {("kiosk/ui/screenshot.py", "save")}, writers
