"""The project carries its own design document, and it stays true: every package the code has is in its layout,
and nothing points at documents a clone of the repository does not have."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESIGN = ROOT / "docs" / "design.md"


def test_no_reference_to_documents_outside_the_repository():
    found = subprocess.run(["git", "grep", "-n", "-I", "-e", "shared/", "-e", "library-facts", "--", ".",
                            ":!tests/test_docs.py"],
                           cwd=ROOT, capture_output=True, text=True).stdout
    assert found == "", f"references to files a clone does not have:\n{found}"


def test_the_design_documents_every_package_of_the_code():
    text = DESIGN.read_text(encoding="utf-8")
    layout = text[text.index("## 2. Layout"):text.index("## 3.")]
    tracked = subprocess.run(["git", "ls-files", "--", "*/__init__.py"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    packages = [Path(p).parent for p in tracked if len(Path(p).parts) == 2 and Path(p).parts[0] not in ("tests", "bench")]
    packages += [Path(p).parent for p in tracked if len(Path(p).parts) == 3
                 and Path(p).parts[0] in ("kiosk", "gateway", "simulators")]
    assert Path("kiosk/core") in packages and Path("gateway/sip2") in packages
    missing = [str(p) for p in packages if f"{p.name}/" not in layout]
    assert not missing, f"packages missing from docs/design.md §2: {missing}"


def test_the_design_names_the_topics_the_code_uses():
    text = DESIGN.read_text(encoding="utf-8")
    for topic in ("bookcase/<id>/…", "central/patron/<patron-key>", "central/ack/<bookcase-id>",
                  "central/gateway/<id>/state", "central/content"):
        assert topic in text, topic


def test_the_design_does_not_call_planned_what_the_repository_has():
    text = DESIGN.read_text(encoding="utf-8")
    centre = text[text.index("## 10."):text.index("## 11.")]
    for name, where in (("Console", "gateway/console"), ("Image", "systemd/image")):
        assert not ((ROOT / where).is_dir() and f"**{name}** (planned)" in centre), f"{name} is in {where}/"
