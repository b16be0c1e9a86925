"""Configuration: read once at an entry point into frozen dataclasses.

Sources, later wins: built-in defaults, the TOML file named by ``SMSGW_CONFIG``, then a few
environment variables (``REDIS_URL``, ``SMSGW_DEFAULT_CHANNEL``...). Every value is validated at
start; a bad one raises :class:`ConfigError` naming the file, the field and what is wrong, so the
process stops before it serves anything.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from worker.redisconn import check_redis_url

T = TypeVar("T")

BindMode = Literal["transceiver", "transmitter_receiver"]
SplitMode = Literal["udh8", "udh16", "sar", "payload"]
ReceiptIdFormat = Literal["auto", "same", "hex_to_dec", "dec_to_hex"]

MAX_REPLICA_WAIT_MS = 4000  # below the 5 s read timeout of the gateway's Redis client

# SMPP statuses worth retrying: throttled, queue full, system error, and "bind not ready".
DEFAULT_TRANSIENT = frozenset({0x58, 0x14, 0x08, 0x04})

ENV_VARS = (
    "REDIS_URL",
    "SMSGW_CONFIG",
    "SMSGW_DEFAULT_CHANNEL",
    "SMSGW_DEFAULT_COUNTRY_CODE",
    "SMSGW_BOOTSTRAP_ADMIN_KEY",
    "SMSGW_METRICS_TOKEN",
    "SMSGW_DEV_API_KEY",
    "SMSGW_LOG_FORMAT",  # json or console; read by the CLI entry point
)


class ConfigError(Exception):
    """A configuration value is missing or invalid."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One SMPP account at an SMSC."""

    name: str
    host: str = "127.0.0.1"
    port: int = 2775
    system_id: str = "smsgw"
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind_mode: BindMode = "transceiver"
    binds: int = 1
    window: int = 10
    tps: float = 0.0  # 0 means unlimited
    source_addr: str = "smsgw"
    source_ton: int = 5
    source_npi: int = 0
    dest_ton: int = 1
    dest_npi: int = 1
    registered_delivery: int = 1
    validity_seconds: int = 0  # 0: the SMSC's default
    split_mode: SplitMode = "udh8"
    enquire_link_seconds: float = 30.0
    response_timeout_seconds: float = 10.0
    reconnect_min_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    bind_refused_retry_seconds: float = 60.0
    transient_statuses: frozenset[int] = DEFAULT_TRANSIENT
    max_attempts: int = 5
    max_age_seconds: int = 3600
    receipt_id_format: ReceiptIdFormat = "auto"
    # Receipts are matched across every channel of one SMSC account: an SMSC may deliver a
    # receipt on any bind of the account. "" (the default) means host:port:system_id.
    smsc_account: str = ""

    def __post_init__(self) -> None:
        if not self.smsc_account:  # derived once here, not per receipt
            account = f"{self.host.lower()}:{self.port}:{self.system_id}"
            object.__setattr__(self, "smsc_account", account)


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """HTTP front end."""

    host: str = "127.0.0.1"
    port: int = 8080
    default_channel: str = ""
    default_country_code: str = ""
    max_segments: int = 10
    max_messages_per_request: int = 1000
    max_body_bytes: int = 4 * 1024 * 1024
    idempotency_window_seconds: int = 86400
    # aiohttp's access log, a line per request at INFO: off unless asked for, as it cost ~40%
    # of single-message throughput here (requests are counted in /metrics either way).
    access_log: bool = False
    admin_bootstrap_key: str = field(default="", repr=False)
    # A secret, so from SMSGW_METRICS_TOKEN only: when set, GET /metrics needs it as a Bearer
    # token (the API port may face the internet; metrics name channels and volumes).
    metrics_token: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """arq worker process."""

    max_jobs: int = 200
    job_timeout_seconds: int = 300
    health_port: int = 0  # 0: no health server
    drain_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``smsgw webhooks``: delivery of status and MO events to accounts' URLs."""

    timeout_seconds: float = 5.0  # per POST, connect included
    max_age_seconds: int = 86400  # retried until this old, then dead-lettered
    backoff_min_seconds: float = 1.0
    backoff_max_seconds: float = 300.0
    concurrency_per_account: int = 4  # POSTs in flight per account (never two per message)
    queue_per_account: int = 200  # events read ahead per account
    lease_seconds: float = 30.0  # a dead process's accounts are taken over after this
    # Tenants choose the URLs: only globally routable unicast addresses, unless this is on
    # (dev mode and tests, whose receivers listen on 127.0.0.1). See worker/netguard.py.
    allow_private_networks: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process needs, validated."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    retention_seconds: int = 7 * 86400
    # Durability: a write counts (a send is answered, an outcome or receipt recorded) only
    # once this many replicas hold it (Redis WAIT), or the wait below runs out.
    replica_acks: int = 0
    replica_ack_timeout_ms: int = 1000
    gateway: GatewaySettings = GatewaySettings()
    worker: WorkerSettings = WorkerSettings()
    webhooks: WebhookSettings = WebhookSettings()
    channels: Mapping[str, Channel] = field(default_factory=dict)
    source: str = "<defaults>"

    def channel(self, name: str) -> Channel | None:
        """The channel called ``name``, or None."""
        return self.channels.get(name)


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from ``env`` (and the TOML file it names)."""
    path = env.get("SMSGW_CONFIG", "")
    raw: dict[str, Any] = _read_toml(Path(path)) if path else {}
    return settings_from_dict(raw, env, source=path or "<defaults>")


def settings_from_dict(raw: Mapping[str, Any], env: Mapping[str, str], source: str) -> Settings:
    """Validate a parsed TOML document plus environment overrides."""
    raw = dict(raw)
    gateway_raw = dict(_table(raw.pop("gateway", {}), "gateway", source))
    worker_raw = _table(raw.pop("worker", {}), "worker", source)
    webhooks_raw = _table(raw.pop("webhooks", {}), "webhooks", source)
    channels_raw = _table(raw.pop("channels", {}), "channels", source)
    if env.get("REDIS_URL"):
        raw["redis_url"] = env["REDIS_URL"]
    for var, key in (
        ("SMSGW_DEFAULT_CHANNEL", "default_channel"),
        ("SMSGW_DEFAULT_COUNTRY_CODE", "default_country_code"),
        ("SMSGW_BOOTSTRAP_ADMIN_KEY", "admin_bootstrap_key"),
        ("SMSGW_METRICS_TOKEN", "metrics_token"),
    ):
        if env.get(var):
            gateway_raw[key] = env[var]
    channels = {
        name: _build(Channel, {**_table(body, f"channels.{name}", source), "name": name},
                     f"channels.{name}", source)
        for name, body in channels_raw.items()
    }
    settings = _build(
        Settings,
        {
            **raw,
            "gateway": _build(GatewaySettings, gateway_raw, "gateway", source),
            "worker": _build(WorkerSettings, worker_raw, "worker", source),
            "webhooks": _build(WebhookSettings, webhooks_raw, "webhooks", source),
            "channels": channels,
            "source": source,
        },
        "",
        source,
    )
    _check_cross_fields(settings)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _table(value: Any, where: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: {where}: must be a table")
    return value


_NESTED = {"gateway", "worker", "webhooks", "channels", "source"}


def _build(cls: type[T], values: Mapping[str, Any], where: str, source: str) -> T:
    """Instantiate a config dataclass, checking names and types of every value."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{where}.{key}" if where else key
        if key not in fields:
            raise ConfigError(f"{source}: {name}: unknown setting")
        kwargs[key] = value if key in _NESTED and not where else _coerce(
            hints[key], value, name, source
        )
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, name: str, source: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: {name}: must be {expected}, got {value!r}")

    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            raise bad("one of " + ", ".join(repr(a) for a in typing.get_args(hint)))
        return value
    if origin is frozenset:
        if not isinstance(value, list) or not all(_is_int(v) for v in value):
            raise bad("a list of integers")
        return frozenset(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if hint is int:
        if not _is_int(value) or value < 0:
            raise bad("a non-negative integer")
        return value
    if hint is float:
        if not (_is_int(value) or isinstance(value, float)) or value < 0:
            raise bad("a non-negative number")
        return float(value)
    if hint is str or (origin is types.UnionType and str in typing.get_args(hint)):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    raise bad(f"of type {hint}")  # pragma: no cover - a field type we forgot to support


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_cross_fields(settings: Settings) -> None:
    src = settings.source
    for ch in settings.channels.values():
        where = f"{src}: channels.{ch.name}"
        if not 1 <= ch.port <= 65535:
            raise ConfigError(f"{where}.port: must be between 1 and 65535, got {ch.port}")
        if ch.binds < 1:
            raise ConfigError(f"{where}.binds: must be at least 1, got {ch.binds}")
        if ch.window < 1:
            raise ConfigError(f"{where}.window: must be at least 1, got {ch.window}")
        if len(ch.system_id) > 15:
            raise ConfigError(f"{where}.system_id: at most 15 characters (SMPP 3.4)")
        if len(ch.password) > 8:
            raise ConfigError(f"{where}.password: at most 8 characters (SMPP 3.4)")
        if ch.reconnect_max_seconds < ch.reconnect_min_seconds:
            raise ConfigError(f"{where}.reconnect_max_seconds: must be >= reconnect_min_seconds")
    gw = settings.gateway
    if gw.default_channel and gw.default_channel not in settings.channels:
        raise ConfigError(
            f"{src}: gateway.default_channel: no channel named {gw.default_channel!r}"
        )
    if gw.default_country_code and not gw.default_country_code.isdigit():
        raise ConfigError(f"{src}: gateway.default_country_code: must be digits")
    try:
        check_redis_url(settings.redis_url)
    except ValueError as exc:
        raise ConfigError(f"{src}: redis_url: {exc}") from None
    if settings.replica_acks and not 1 <= settings.replica_ack_timeout_ms <= MAX_REPLICA_WAIT_MS:
        raise ConfigError(f"{src}: replica_ack_timeout_ms: must be between 1 and "
                          f"{MAX_REPLICA_WAIT_MS} (a Redis client's read timeout is longer)")
    _check_webhooks(settings.webhooks, src)


def _check_webhooks(wh: WebhookSettings, src: str) -> None:
    where = f"{src}: webhooks"
    # Short timeouts keep one slow receiver from holding its account's slots for long.
    if not 0 < wh.timeout_seconds <= 60:
        raise ConfigError(f"{where}.timeout_seconds: must be above 0 and at most 60")
    if wh.max_age_seconds < 1:
        raise ConfigError(f"{where}.max_age_seconds: must be at least 1")
    if not 0 < wh.backoff_min_seconds <= wh.backoff_max_seconds:
        raise ConfigError(f"{where}.backoff_min_seconds: must be above 0 and at most "
                          "backoff_max_seconds")
    if wh.concurrency_per_account < 1 or wh.queue_per_account < wh.concurrency_per_account:
        raise ConfigError(f"{where}.queue_per_account: must be at least concurrency_per_account "
                          "(itself at least 1)")
    if wh.lease_seconds <= wh.timeout_seconds:
        raise ConfigError(f"{where}.lease_seconds: must exceed timeout_seconds")
