"""The [mqtt] config section: defaults, TLS and password files, and errors that name the key."""

from __future__ import annotations

import pytest

from kiosk.config import ConfigError, load_config
from simulators.fleet.bookcases import write_fleet_config


def load(tmp_path, mqtt, bookcase_id="MH-0001"):
    return load_config(write_fleet_config(tmp_path, bookcase_id, "测试", mqtt))


def test_absent_section_means_no_fleet_link(tmp_path):
    assert load(tmp_path, None).mqtt is None


def test_defaults(tmp_path):
    m = load(tmp_path, {"host": "mqtt.library.example"}).mqtt
    assert (m.port, m.tls, m.topic_root, m.client_id) == (1883, False, "citybook/v1/minhang/", "MH-0001")
    assert (m.session_expiry_s, m.inflight, m.keepalive_s, m.username, m.password) == (604800, 32, 60, None, None)


def test_tls_files_and_password_file(tmp_path):
    for name in ("ca.crt", "mh.crt", "mh.key"):
        (tmp_path / name).write_text("x")
    (tmp_path / "pw").write_text("s3cret-from-a-file\n")
    m = load(tmp_path, {"host": "h", "tls_ca": "ca.crt", "tls_cert": "mh.crt", "tls_key": "mh.key",
                        "username": "MH-0001", "password_file": "pw"}).mqtt
    assert m.tls and m.port == 8883 and m.tls_ca == tmp_path / "ca.crt" and m.password == "s3cret-from-a-file"
    assert "s3cret" not in repr(m)


@pytest.mark.parametrize("mqtt, key, words", [
    ({"host": "h", "password": "hunter2"}, "mqtt.password", "password_file"),
    ({"host": "h", "colour": "red"}, "mqtt.colour", "unknown key"),
    ({"port": 1883}, "mqtt.host", "missing"),
    ({"host": "h", "tls_ca": "nowhere.crt"}, "mqtt.tls_ca", "does not exist"),
    ({"host": "h", "username": "u", "password_file": "nowhere"}, "mqtt.password_file", "does not exist"),
    ({"host": "h", "topic_root": "citybook/v1/#/"}, "mqtt.topic_root", "wildcards"),
    ({"host": "h", "topic_root": "citybook/v1/minhang"}, "mqtt.topic_root", "end with"),
    ({"host": "h", "inflight": 0}, "mqtt.inflight", "out of range"),
    ({"host": "h", "reconnect_min_s": 10, "reconnect_max_s": 5}, "mqtt.reconnect_max_s", "shorter"),
])
def test_errors_name_the_key(tmp_path, mqtt, key, words):
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, mqtt)
    assert exc.value.key == key and words in exc.value.message


def test_cert_without_key_and_password_without_user(tmp_path):
    (tmp_path / "mh.crt").write_text("x")
    (tmp_path / "pw").write_text("x")
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, {"host": "h", "tls_cert": "mh.crt"})
    assert exc.value.key == "mqtt.tls_key"
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, {"host": "h", "password_file": "pw"})
    assert exc.value.key == "mqtt.username"


def test_bookcase_id_must_be_a_topic_level(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, {"host": "h"}, bookcase_id="MH/0001")
    assert exc.value.key == "bookcase.id"
