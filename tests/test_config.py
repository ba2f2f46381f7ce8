"""Config loading: the demo file loads; every kind of mistake names the file, the key and the problem."""

from pathlib import Path

import pytest

from kiosk.cli import main
from kiosk.config import ConfigError, load_config

DEMO = Path(__file__).resolve().parents[1] / "config" / "demo.toml"


def test_demo_config():
    cfg = load_config(DEMO)
    assert cfg.bookcase.id == "MH-0001" and len(cfg.doors) == 6
    assert cfg.policy.class_limits == {"adult": 15, "branch": 10, "child": 10}
    assert cfg.lockboard.baudrate == 19200 and cfg.rfid.baudrate == 38400
    assert cfg.lockboard.port == str(DEMO.parents[1] / "var" / "demo" / "sim" / "lockboard")
    assert cfg.door(2).lock == 2 and cfg.door(5).reader == 5


def _write(tmp_path, text):
    base = DEMO.read_text(encoding="utf-8")
    path = tmp_path / "c.toml"
    path.write_text(text(base) if callable(text) else text, encoding="utf-8")
    return path


@pytest.mark.parametrize("edit,key,words", [
    (lambda b: b.replace("lock = 2\n", 'lock = "two"\n'), "door 2: lock", "expected an integer"),
    (lambda b: b.replace("lock = 2\n", "lock = 17\n"), "door 2: lock", "out of range"),
    (lambda b: b.replace("lock = 2\n", "lock = 1\n"), "door 2: lock", "used by door 1"),
    (lambda b: b.replace("reader = 3\n", "reader = 2\n"), "door 3: reader", "used by door 2"),
    (lambda b: b.replace("sensor_bit_open = 1", "sensor_bit_open = 2"), "lockboard.sensor_bit_open", "not one of"),
    (lambda b: b.replace("[scanner]", "[scanner]\nbaud = 9600"), "scanner.baud", "unknown key"),
    (lambda b: b.replace('secret = "demo-secret-not-for-production"', 'secret = "short"'), "secret", "16"),
    (lambda b: b.replace("door_open_alarm_s = 90", "door_open_alarm_s = 10"), "session.door_open_alarm_s",
     "shorter"),
    (lambda b: b.replace('[bookcase]\nid = "MH-0001"', '[bookcase]\nid = ""'), "bookcase.id", "empty"),
])
def test_mistakes_name_the_key(tmp_path, edit, key, words):
    path = _write(tmp_path, edit)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == key and words in err.value.message
    assert str(path) in str(err.value)


def test_broken_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(_write(tmp_path, "library = [unclosed"))
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match=r"doors: missing"):
        load_config(_write(tmp_path, lambda b: b.split("[[doors]]")[0]))


def test_cli_prints_a_config_error_not_a_traceback(tmp_path, capsys):
    path = _write(tmp_path, lambda b: b.replace("lock = 2\n", 'lock = "two"\n'))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "door 2: lock" in err and "Traceback" not in err
