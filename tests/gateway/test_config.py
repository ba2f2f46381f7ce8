"""gateway.toml: the example configs load; every mistake names the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_gateway_config
from tests.gateway.support import write_gateway_config

ROOT = Path(__file__).resolve().parents[2]


def test_the_written_config_loads_with_its_secrets_from_files(tmp_path):
    cfg = load_gateway_config(write_gateway_config(tmp_path, mqtt_port=1999, ils_port=6100))
    assert cfg.mqtt.client_id == "citybook-gateway-gw-1" and cfg.mqtt.topic_root == "citybook/v1/minhang/"
    assert cfg.ils.password == "sip2-test-password" and cfg.ils.port == 6100 and cfg.ils.charset == "utf-8"
    assert cfg.journal.path == tmp_path / "journal.sqlite3" and cfg.patrons.snapshot == tmp_path / "patrons.jsonl"
    assert "sip2-test-password" not in repr(cfg.mqtt)


@pytest.mark.parametrize("name", ["gateway.example.toml", "gateway-demo.toml"])
def test_the_shipped_configs_load(name, tmp_path):
    # Their secret and CA files live on the server (or under var/demo); make them here.
    text = (ROOT / "config" / name).read_text().replace("/etc/citybook/", f"{tmp_path}/etc/").replace(
        "../var/demo/", "var/demo/")
    for rel in ("etc/ca.crt", "etc/gateway-mqtt-password", "etc/sip2-password", "etc/patron-secret",
                "var/demo/secrets/gateway-mqtt-password", "var/demo/secrets/sip2-password",
                "var/demo/secrets/patron-secret"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("a-secret-of-at-least-16-characters\n")
    (tmp_path / name).write_text(text)
    cfg = load_gateway_config(tmp_path / name)
    assert cfg.library == "minhang" and cfg.ils.pool_size >= 1 and cfg.patrons.secret.startswith("a-secret")


@pytest.mark.parametrize("change, key, words", [
    (("[ils]\n", "[ils]\npassword = \"x\"\n"), "ils.password", "password_file"),
    (("charset = ", "charset = \"big5\"\n#"), "ils.charset", "big5"),
    (('path = "journal.sqlite3"', 'url = "postgresql://u:pw@db/x"'), "journal.url", "password"),
    (('path = "journal.sqlite3"', 'url = "mysql://db/x"'), "journal.url", "postgresql"),
    (("hold_s = 3", "hold_s = -1"), "order.hold_s", "out of range"),
    (("[acks]", "[acks]\nbatchsize = 3"), "acks.batchsize", "unknown key"),
    (('secret_file = "patron-secret"', 'secret_file = "missing"'), "patrons.secret_file", "does not exist"),
    (('id = "gw-1"', 'id = "gw 1"'), "gateway.id", "letters"),
])
def test_mistakes_name_file_key_and_problem(tmp_path, change, key, words):
    path = write_gateway_config(tmp_path, ils_extra='charset = "utf-8"')
    old, new = change
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_gateway_config(path)
    assert err.value.key == key and words in err.value.message and str(path) in str(err.value)


def test_a_short_patron_secret_is_refused(tmp_path):
    path = write_gateway_config(tmp_path)
    (tmp_path / "patron-secret").write_text("short\n")
    with pytest.raises(ConfigError, match="at least 16"):
        load_gateway_config(path)
