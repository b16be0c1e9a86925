"""Configuration is validated at start; errors name the file, the field and the problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from worker.config import ConfigError, load_settings, settings_from_dict


def _write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "smsgw.toml"
    path.write_text(text)
    return {"SMSGW_CONFIG": str(path)}


def test_a_full_channel_table_loads_into_typed_settings(tmp_path: Path) -> None:
    env = _write(tmp_path, """
redis_url = "redis://10.0.0.5:6379/2"
[gateway]
default_channel = "mtn"
[channels.mtn]
host = "smsc.example"
port = 2776
system_id = "acme"
password = "pw"
bind_mode = "transmitter_receiver"
binds = 4
window = 25
tps = 120.5
split_mode = "sar"
transient_statuses = [88, 20]
""")
    settings = load_settings(env)
    ch = settings.channels["mtn"]
    assert (ch.host, ch.port, ch.binds, ch.window, ch.tps) == ("smsc.example", 2776, 4, 25,
                                                               120.5)
    assert ch.bind_mode == "transmitter_receiver" and ch.split_mode == "sar"
    assert ch.transient_statuses == frozenset({88, 20})
    assert settings.redis_url == "redis://10.0.0.5:6379/2"


def test_env_overrides_the_file(tmp_path: Path) -> None:
    env = _write(tmp_path, 'redis_url = "redis://a:1/0"\n[channels.x]\n')
    env.update(REDIS_URL="redis://b:2/0", SMSGW_DEFAULT_CHANNEL="x")
    settings = load_settings(env)
    assert settings.redis_url == "redis://b:2/0" and settings.gateway.default_channel == "x"


@pytest.mark.parametrize(("toml", "field", "problem"), [
    ("[channels.sim]\nport = 'abc'\n", "channels.sim.port", "integer"),
    ("[channels.sim]\nport = 70000\n", "channels.sim.port", "between 1 and 65535"),
    ("[channels.sim]\nbind_mode = 'both'\n", "channels.sim.bind_mode", "one of"),
    ("[channels.sim]\nwindw = 5\n", "channels.sim.windw", "unknown setting"),
    ("[channels.sim]\nwindow = 0\n", "channels.sim.window", "at least 1"),
    ("[channels.sim]\npassword = 'waytoolong'\n", "channels.sim.password", "8 characters"),
    ("[gateway]\ndefault_channel = 'nope'\n", "gateway.default_channel", "no channel"),
    ("redis_url = 'http://x'\n", "redis_url", "redis://"),
    ("[gateway]\nmax_segments = -1\n", "gateway.max_segments", "non-negative"),
])
def test_a_bad_value_names_the_file_the_field_and_the_problem(
    tmp_path: Path, toml: str, field: str, problem: str
) -> None:
    env = _write(tmp_path, toml)
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    message = str(err.value)
    assert env["SMSGW_CONFIG"] in message and field in message and problem in message


def test_unreadable_and_invalid_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({"SMSGW_CONFIG": str(tmp_path / "missing.toml")})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(_write(tmp_path, "[channels\n"))


def test_defaults_need_no_file() -> None:
    settings = settings_from_dict({}, {}, source="<defaults>")
    assert settings.channels == {} and settings.gateway.max_segments == 10
    assert settings.retention_seconds == 7 * 86400


def test_webhooks_reach_private_networks_only_when_the_file_allows_it(tmp_path: Path) -> None:
    assert settings_from_dict({}, {}, source="<defaults>").webhooks.allow_private_networks is False
    allowed = load_settings(_write(tmp_path, "[webhooks]\nallow_private_networks = true\n"))
    assert allowed.webhooks.allow_private_networks is True
    with pytest.raises(ConfigError, match=r"webhooks\.allow_private_networks: must be true or"):
        load_settings(_write(tmp_path, "[webhooks]\nallow_private_networks = 'yes'\n"))


def test_the_process_stops_at_start_on_a_bad_value(tmp_path: Path) -> None:
    env = _write(tmp_path, "[channels.sim]\nwindow = 'big'\n")
    proc = subprocess.run([sys.executable, "-m", "gateway", "worker"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "channels.sim.window" in proc.stderr and env["SMSGW_CONFIG"] in proc.stderr


def test_channels_on_one_smpp_account_share_their_smsc_account() -> None:
    settings = settings_from_dict({"channels": {
        "alpha": {"host": "SMSC.example", "port": 2775, "system_id": "acme"},
        "beta": {"host": "smsc.example", "port": 2775, "system_id": "acme", "source_addr": "b"},
        "other": {"host": "smsc.example", "port": 2775, "system_id": "acme2"},
    }}, {}, source="test")
    accounts = {name: ch.smsc_account for name, ch in settings.channels.items()}
    assert accounts["alpha"] == accounts["beta"] == "smsc.example:2775:acme"
    assert accounts["other"] != accounts["alpha"]
