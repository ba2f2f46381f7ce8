"""Config loading: the demo file loads; every kind of mistake names the file, the key and the problem."""

import os
import subprocess
from pathlib import Path

import pytest

from kiosk import proc
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


# --- issue 11 item 8: every mistake at once, each said once, doors by their number ---------------------------


def test_missing_doors_do_not_hide_the_other_mistakes(tmp_path):
    path = _write(tmp_path, lambda b: b.split("[[doors]]")[0].replace("sensor_bit_open = 1", "sensor_bit_open = 2")
                  .replace("loan_days = 30", "loan_days = 0"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert [e.key for e in err.value.errors] == ["doors", "lockboard.sensor_bit_open", "policy.loan_days"]
    assert str(err.value).startswith("3 problems:\n")


def test_a_missing_table_is_one_mistake_not_one_per_key_it_should_hold(tmp_path):
    path = _write(tmp_path, lambda b: "rfid = 5\n" + b.replace("[lockboard]", "[lockbord]").replace("[rfid]", "[rfidx]"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    messages = {e.key: e.message for e in err.value.errors}
    assert set(messages) == {"lockbord", "rfidx", "lockboard", "rfid"}, messages
    assert messages["lockbord"].startswith("unknown key (did you mean 'lockboard'? known: bookcase, ")
    assert messages["lockboard"] == "missing table" and messages["rfid"] == "expected a table, got an integer"


def test_check_config_lists_the_mistakes_after_a_missing_doors_list(tmp_path, capsys):
    path = _write(tmp_path, lambda b: b.replace("[[doors]]", "[[door]]").replace("baudrate = 19200",
                                                                                   'baudrate = "fast"'))
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[0] == f"kiosk: {path}: 3 mistake(s); the bookcase would not start:"
    for words in ("  door: unknown key (did you mean 'doors'?", "  doors: missing: list the bookcase's doors",
                  "  lockboard.baudrate: expected an integer, got a string 'fast'"):
        assert words in err, words


def _run_copy(tmp_path, first_line: str):
    config = tmp_path / "demo.toml"
    config.write_text("# the operator's config\n", encoding="utf-8")
    (tmp_path / ".demo.run.toml").write_text(first_line + " for one run.\n", encoding="utf-8")
    return config


def test_the_status_tools_read_the_run_copy_only_while_that_very_demo_runs(tmp_path):
    from kiosk.config import RUN_COPY_MARK, run_copy_mark, running_config
    config = _run_copy(tmp_path, run_copy_mark(os.getpid()))
    assert running_config(config) == tmp_path / ".demo.run.toml"
    # The demo died and its pid went to another process: the start time tells them apart.
    started = proc.started(os.getpid())
    config = _run_copy(tmp_path, f"{RUN_COPY_MARK}{os.getpid()}, started {started + 1})")
    assert running_config(config) == config
    dead = subprocess.Popen(["true"])
    dead.wait()
    config = _run_copy(tmp_path, run_copy_mark(os.getpid()).replace(str(os.getpid()), str(dead.pid), 1))
    assert running_config(config) == config
