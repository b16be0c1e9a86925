"""Configuration is validated at start; errors name the file, the field and the problem."""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme

from worker.config import (
    Channel,
    ConfigError,
    GatewaySettings,
    Settings,
    WebhookSettings,
    WorkerSettings,
    load_settings,
    settings_from_dict,
)


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
    ("[channels.sim]\nwindow = 0\n", "channels.sim.window", "between 1 and"),
    ("[channels.sim]\npassword = 'waytoolong'\n", "channels.sim.password", "8 characters"),
    ("[gateway]\ndefault_channel = 'nope'\n", "gateway.default_channel", "no channel"),
    ("redis_url = 'http://x'\n", "redis_url", "redis://"),
    ("[gateway]\nmax_segments = -1\n", "gateway.max_segments", "non-negative"),
    # A concatenated text has at most 255 parts (one octet counts them in UDH and SAR).
    ("[gateway]\nmax_segments = 256\n", "gateway.max_segments", "between 1 and 255"),
    ("[gateway]\nmax_segments = 0\n", "gateway.max_segments", "between 1 and 255"),
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


def test_the_largest_segment_limit_is_what_a_concatenation_header_can_count(
    tmp_path: Path,
) -> None:
    assert load_settings(_write(tmp_path, "[gateway]\nmax_segments = 255\n")
                         ).gateway.max_segments == 255


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


# Every timing and size setting, with a value just out of range on each side (None: no value
# that TOML can spell is out of range there). Issue 11, item 13: enquire_link_seconds = 0 was
# accepted and the worker sent 59,269 enquire_links in 2 s.
OUT_OF_RANGE: list[tuple[str, str, Any, Any]] = [
    ("channels.sim", "port", 0, 65536),
    ("channels.sim", "binds", 0, 101),
    ("channels.sim", "window", 0, 1001),
    ("channels.sim", "tps", None, 100_001),
    ("channels.sim", "source_ton", None, 256),
    ("channels.sim", "source_npi", None, 256),
    ("channels.sim", "dest_ton", None, 256),
    ("channels.sim", "dest_npi", None, 256),
    ("channels.sim", "registered_delivery", None, 256),
    ("channels.sim", "validity_seconds", None, 30 * 86400 + 1),
    ("channels.sim", "enquire_link_seconds", 0.999, 3601),
    ("channels.sim", "response_timeout_seconds", 0.999, 3601),
    ("channels.sim", "reconnect_min_seconds", 0.0, 3601),
    ("channels.sim", "reconnect_max_seconds", 0.0, 3601),
    ("channels.sim", "bind_refused_retry_seconds", 0.999, 3601),
    ("channels.sim", "max_attempts", 0, 101),
    ("channels.sim", "max_age_seconds", 0, 30 * 86400 + 1),
    ("gateway", "port", 0, 65536),
    ("gateway", "max_segments", 0, 256),
    ("gateway", "max_messages_per_request", 0, 100_001),
    ("gateway", "max_body_bytes", 1023, 256 * 1024 * 1024 + 1),
    ("gateway", "idempotency_window_seconds", 0, 30 * 86400 + 1),
    ("gateway", "max_schedule_seconds", -1, 366 * 86400 + 1),
    ("worker", "max_jobs", 0, 10_001),
    ("worker", "job_timeout_seconds", 0, 86401),
    ("worker", "health_port", None, 65536),
    ("worker", "drain_seconds", None, 301),
    ("worker", "failover_grace_seconds", 0.5, 3601),
    ("webhooks", "timeout_seconds", 0.0, 61),
    ("webhooks", "max_age_seconds", 0, 30 * 86400 + 1),
    ("webhooks", "backoff_min_seconds", 0.0, 86401),
    ("webhooks", "backoff_max_seconds", 0.0, 86401),
    ("webhooks", "concurrency_per_account", 0, 1001),
    ("webhooks", "max_concurrency_per_account", 0, 1001),
    ("webhooks", "queue_per_account", 0, 100_001),
    ("webhooks", "lease_seconds", 0.0, 3601),
    ("webhooks", "reconcile_seconds", 0.0, 86401),
    ("", "retention_seconds", 59, 366 * 86400 + 1),
    ("", "replica_acks", None, 101),
    ("", "replica_ack_timeout_ms", 0, 4001),
]


def _doc(table: str, key: str, value: Any) -> str:
    line = f"{key} = {value!r}\n"
    return line if not table else f"[{table}]\n{line}"


@pytest.mark.parametrize(("table", "key", "low", "high"), OUT_OF_RANGE,
                         ids=[f"{t or 'top'}.{k}" for t, k, _, _ in OUT_OF_RANGE])
def test_a_timing_or_size_setting_out_of_its_bounds_is_refused_naming_the_field(
    tmp_path: Path, table: str, key: str, low: Any, high: Any
) -> None:
    field = f"{table}.{key}" if table else key
    for value in (low, high):
        if value is None:
            continue
        env = _write(tmp_path, _doc(table, key, value))
        with pytest.raises(ConfigError) as err:
            load_settings(env)
        message = str(err.value)
        assert f"{env['SMSGW_CONFIG']}: {field}: must be" in message, message


def test_enquire_link_seconds_below_one_second_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"t\.toml: channels\.x\.enquire_link_seconds: must "
                                          r"be between 1 and 3600, got 0"):
        settings_from_dict({"channels": {"x": {"enquire_link_seconds": 0}}}, {}, "t.toml")


def test_every_numeric_setting_is_bounded() -> None:
    tables = {"channels.sim": Channel, "gateway": GatewaySettings, "worker": WorkerSettings,
              "webhooks": WebhookSettings, "": Settings}
    numeric = {(table, f.name) for table, cls in tables.items()
               for f in dataclasses.fields(cls) if f.type in ("int", "float")}
    assert numeric == {(table, key) for table, key, _, _ in OUT_OF_RANGE}


def test_the_defaults_and_the_bounds_themselves_are_accepted() -> None:
    settings_from_dict({"channels": {"x": {}}}, {}, "t.toml")
    edges = {"enquire_link_seconds": 1, "response_timeout_seconds": 1,
             "reconnect_min_seconds": 0.01, "reconnect_max_seconds": 3600,
             "max_attempts": 100, "window": 1000, "validity_seconds": 30 * 86400}
    ch = settings_from_dict({"channels": {"x": edges}}, {}, "t.toml").channels["x"]
    assert (ch.enquire_link_seconds, ch.reconnect_min_seconds) == (1.0, 0.01)


# --- TLS (issue 11): the context is built once, at load; a bad file stops the process there ---


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_channel(**fields: Any) -> dict[str, Any]:
    return {"channels": {"x": {"tls": True, **fields}}}


def test_a_tls_channel_verifies_the_smsc_certificate_by_default(
    tmp_path: Path, ca: trustme.CA
) -> None:
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    ch = settings_from_dict(_tls_channel(tls_ca_file=str(tmp_path / "ca.pem")), {},
                            "t.toml").channels["x"]
    assert isinstance(ch.tls_context, ssl.SSLContext)
    assert ch.tls_context.verify_mode == ssl.CERT_REQUIRED and ch.tls_context.check_hostname
    assert ch.tls_context.minimum_version >= ssl.TLSVersion.TLSv1_2
    plain = settings_from_dict({"channels": {"x": {}}}, {}, "t.toml").channels["x"]
    assert plain.tls is False and plain.tls_context is None


def test_a_tls_channel_without_a_ca_file_trusts_the_system_store() -> None:
    ch = settings_from_dict(_tls_channel(), {}, "t.toml").channels["x"]
    assert ch.tls_context is not None and ch.tls_context.verify_mode == ssl.CERT_REQUIRED


def test_a_tls_channel_loads_its_client_certificate_and_key(
    tmp_path: Path, ca: trustme.CA
) -> None:
    leaf = ca.issue_cert("smsgw-client")
    leaf.cert_chain_pems[0].write_to_path(tmp_path / "client.pem")
    leaf.private_key_pem.write_to_path(tmp_path / "client.key")
    ch = settings_from_dict(_tls_channel(tls_cert_file=str(tmp_path / "client.pem"),
                                         tls_key_file=str(tmp_path / "client.key")),
                            {}, "t.toml").channels["x"]
    assert ch.tls_context is not None


def _bad_tls_cases(tmp: Path, ca: trustme.CA) -> list[tuple[dict[str, Any], str, str]]:
    (tmp / "garbage.pem").write_text("not a certificate")
    leaf, other = ca.issue_cert("a"), ca.issue_cert("b")
    leaf.cert_chain_pems[0].write_to_path(tmp / "a.pem")
    other.private_key_pem.write_to_path(tmp / "b.key")
    missing = str(tmp / "missing.pem")
    return [
        (_tls_channel(tls_ca_file=missing), "tls_ca_file", "cannot read"),
        (_tls_channel(tls_ca_file=str(tmp / "garbage.pem")), "tls_ca_file", "no certificate"),
        (_tls_channel(tls_cert_file=missing), "tls_cert_file", "cannot read"),
        (_tls_channel(tls_cert_file=str(tmp / "a.pem"), tls_key_file=missing), "tls_key_file",
         "cannot read"),
        (_tls_channel(tls_cert_file=str(tmp / "a.pem"), tls_key_file=str(tmp / "b.key")),
         "tls_cert_file", "do not match"),
        (_tls_channel(tls_cert_file=str(tmp / "a.pem")), "tls_cert_file", "no private key"),
        (_tls_channel(tls_key_file=str(tmp / "b.key")), "tls_key_file", "needs tls_cert_file"),
        ({"channels": {"x": {"tls_ca_file": str(tmp / "a.pem")}}}, "tls_ca_file",
         "only used with tls = true"),
    ]


def test_a_bad_tls_file_or_setting_is_refused_naming_the_field(
    tmp_path: Path, ca: trustme.CA
) -> None:
    for raw, key, problem in _bad_tls_cases(tmp_path, ca):
        with pytest.raises(ConfigError) as err:
            settings_from_dict(raw, {}, "t.toml")
        message = str(err.value)
        assert f"t.toml: channels.x.{key}:" in message and problem in message, (raw, message)


def test_the_process_stops_at_start_on_a_missing_ca_file(tmp_path: Path) -> None:
    env = _write(tmp_path, f"[channels.sim]\ntls = true\ntls_ca_file = '{tmp_path}/nope.pem'\n")
    proc = subprocess.run([sys.executable, "-m", "gateway", "worker"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "channels.sim.tls_ca_file" in proc.stderr and "nope.pem" in proc.stderr
def test_a_channel_names_the_account_that_gets_its_unowned_mo_messages(tmp_path: Path) -> None:
    env = _write(tmp_path, '[channels.mtn]\nmo_default_account = "acme"\n[channels.voda]\n')
    channels = load_settings(env).channels
    assert (channels["mtn"].mo_default_account, channels["voda"].mo_default_account) == (
        "acme", "")
    bad = _write(tmp_path, '[channels.mtn]\nmo_default_account = "a:b"\n')
    with pytest.raises(ConfigError, match=r"channels\.mtn\.mo_default_account: "):
        load_settings(bad)


def test_channels_on_one_smpp_account_share_their_smsc_account() -> None:
    settings = settings_from_dict({"channels": {
        "alpha": {"host": "SMSC.example", "port": 2775, "system_id": "acme"},
        "beta": {"host": "smsc.example", "port": 2775, "system_id": "acme", "source_addr": "b"},
        "other": {"host": "smsc.example", "port": 2775, "system_id": "acme2"},
    }}, {}, source="test")
    accounts = {name: ch.smsc_account for name, ch in settings.channels.items()}
    assert accounts["alpha"] == accounts["beta"] == "smsc.example:2775:acme"
    assert accounts["other"] != accounts["alpha"]
