#!/usr/bin/env python3
"""Makes the voice prompts in kiosk/ui/sounds/<lang>/ from the [voice] texts of the screen's catalogues.

Needs espeak-ng (it speaks Mandarin: voice "cmn") and, for small Ogg Vorbis files, oggenc (vorbis-tools):
  apt-get install espeak-ng vorbis-tools
Without oggenc the prompts are kept as WAV. The files are committed, so a bookcase never needs either tool;
run this only after changing a [voice] text:  .venv/bin/python scripts/make_sounds.py
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kiosk.ui.i18n import LANGS, catalogue  # noqa: E402
from kiosk.ui.voice import DOOR_PROMPTS, PROMPTS, SOUND_DIR  # noqa: E402

LOGGER = logging.getLogger("make_sounds")

VOICES = {"zh": ("cmn", 150), "en": ("en-gb", 150)}      # espeak-ng voice, words a minute (slow and clear)
OGG_QUALITY = "0"                                          # about 64 kbit/s: plenty for speech, small files


def texts(lang: str) -> dict[str, str]:
    """Prompt name -> what to say, for one language."""
    cat = catalogue(lang)
    out = {prompt: cat.t(f"voice.{prompt}") for prompt in PROMPTS}
    out.update({f"door_open_{n}": cat.t("voice.door_open_n", door=n) for n in range(1, DOOR_PROMPTS + 1)})
    return out


def make(lang: str, name: str, text: str, folder: Path, tmp: Path) -> Path:
    voice, speed = VOICES[lang]
    wav = tmp / f"{lang}-{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{name}.*"):
        old.unlink()
    if shutil.which("oggenc"):
        out = folder / f"{name}.ogg"
        subprocess.run(["oggenc", "--quiet", "-q", OGG_QUALITY, "-o", str(out), str(wav)], check=True)
    else:
        out = folder / f"{name}.wav"
        shutil.copy(wav, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=SOUND_DIR, help=f"folder for <lang>/<prompt>.ogg ({SOUND_DIR})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not shutil.which("espeak-ng"):
        print("make_sounds: espeak-ng is not installed (apt-get install espeak-ng vorbis-tools)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for lang in LANGS:
            for name, text in texts(lang).items():
                path = make(lang, name, text, args.out / lang, Path(tmp))
                LOGGER.info("%s: %s (%d bytes)", path.relative_to(args.out), text, path.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
