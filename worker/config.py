"""Configuration: read once at an entry point into frozen dataclasses.

Sources, later wins: built-in defaults, the TOML file named by ``SMSGW_CONFIG``, then a few
environment variables (``REDIS_URL``, ``SMSGW_DEFAULT_CHANNEL``...). Every value is validated at
start; a bad one raises :class:`ConfigError` naming the file, the field and what is wrong, so the
process stops before it serves anything.
"""

from __future__ import annotations

import dataclasses
import re
import ssl
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from worker.encoding import MAX_SEGMENTS, SplitMode
from worker.redisconn import check_redis_url
from worker.routing import NumberCheck, Route, RouteError, RouteTable, check_routes, parse_window
from worker.senders import BadSender, Senders, check_entries

T = TypeVar("T")
N = TypeVar("N", int, float)

BindMode = Literal["transceiver", "transmitter_receiver"]
ReceiptIdFormat = Literal["auto", "same", "hex_to_dec", "dec_to_hex"]

# An account name as the API accepts it (it ends up in Redis key names: no ':' or ',').
ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

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


DAY = 86400


def bounded(default: N, low: float, high: float) -> N:
    """A numeric setting with its default and its inclusive bounds, checked at load. Every
    timing and size setting has some: 0 or an absurd value there is a typo, and one of them
    (enquire_link_seconds = 0) made a worker send 59,269 enquire_links in 2 s."""
    return field(default=default, metadata={"bounds": (low, high)})


OCTET = 255  # TON, NPI and registered_delivery are one octet on the wire


@dataclass(frozen=True, slots=True)
class Channel:
    """One SMPP account at an SMSC."""

    name: str
    host: str = "127.0.0.1"
    port: int = bounded(2775, 1, 65535)
    system_id: str = "smsgw"
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind_mode: BindMode = "transceiver"
    binds: int = bounded(1, 1, 100)
    window: int = bounded(10, 1, 1000)
    tps: float = bounded(0.0, 0, 100_000)  # 0 means unlimited
    source_addr: str = "smsgw"
    source_ton: int = bounded(5, 0, OCTET)
    source_npi: int = bounded(0, 0, OCTET)
    dest_ton: int = bounded(1, 0, OCTET)
    dest_npi: int = bounded(1, 0, OCTET)
    registered_delivery: int = bounded(1, 0, OCTET)
    # 0: the SMSC's default. At most 30 days: the relative validity period has two digits of
    # days, and SMSCs keep messages for days, not months.
    validity_seconds: int = bounded(0, 0, 30 * DAY)
    split_mode: SplitMode = "udh8"
    enquire_link_seconds: float = bounded(30.0, 1, 3600)
    response_timeout_seconds: float = bounded(10.0, 1, 3600)
    # Above 0, or a refused connection is retried in a busy loop.
    reconnect_min_seconds: float = bounded(1.0, 0.01, 3600)
    reconnect_max_seconds: float = bounded(60.0, 0.01, 3600)
    # At least a second: retrying bad credentials at once gets accounts locked at SMSCs.
    bind_refused_retry_seconds: float = bounded(60.0, 1, 3600)
    transient_statuses: frozenset[int] = DEFAULT_TRANSIENT
    max_attempts: int = bounded(5, 1, 100)
    max_age_seconds: int = bounded(3600, 1, 30 * DAY)
    receipt_id_format: ReceiptIdFormat = "auto"
    # SMPP over TLS (Kannel's use-ssl). The SMSC's certificate is always verified: against
    # tls_ca_file (PEM) or the system's trust store, for tls_server_name or else host.
    tls: bool = False
    tls_ca_file: str = ""
    tls_cert_file: str = ""  # a client certificate (PEM), for SMSCs that ask for one
    tls_key_file: str = ""  # its private key, unless tls_cert_file holds it too
    tls_server_name: str = ""
    # Built from the settings above once, at load (never per connect). Not a setting.
    tls_context: ssl.SSLContext | None = field(
        default=None, compare=False, repr=False, metadata={"derived": True})
    # Gets the channel's MO messages to a destination no account owns ('': Admins only).
    mo_default_account: str = ""
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
    port: int = bounded(8080, 1, 65535)
    default_channel: str = ""
    default_country_code: str = ""
    # The worker cannot send more: one octet counts the parts in a UDH or SAR header.
    max_segments: int = bounded(10, 1, MAX_SEGMENTS)
    max_messages_per_request: int = bounded(1000, 1, 100_000)
    max_body_bytes: int = bounded(4 * 1024 * 1024, 1024, 256 * 1024 * 1024)
    idempotency_window_seconds: int = bounded(DAY, 1, 30 * DAY)
    # How far ahead a message may be scheduled (0: scheduling refused); its record is kept
    # for retention_seconds after its time.
    max_schedule_seconds: int = bounded(30 * DAY, 0, 366 * DAY)
    # aiohttp's access log, a line per request at INFO: off unless asked for, as it cost ~40%
    # of single-message throughput here (requests are counted in /metrics either way).
    access_log: bool = False
    admin_bootstrap_key: str = field(default="", repr=False)
    # A secret, so from SMSGW_METRICS_TOKEN only: when set, GET /metrics needs it as a Bearer
    # token (the API port may face the internet; metrics name channels and volumes).
    metrics_token: str = field(default="", repr=False)
    # How recipients are checked: "length" (8 to 15 digits, free) or "libphonenumber" (valid
    # for its country by Google's metadata, about 20 us a recipient). A route may ask for more.
    number_check: NumberCheck = "length"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """arq worker process."""

    max_jobs: int = bounded(200, 1, 10_000)
    job_timeout_seconds: int = bounded(300, 1, DAY)
    health_port: int = bounded(0, 0, 65535)  # 0: no health server
    drain_seconds: float = bounded(10.0, 0, 300)
    # A routed message moves to its route's next channel once its channel has had no bind up
    # on any worker for this long.
    failover_grace_seconds: float = bounded(30.0, 1, 3600)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """``smsgw webhooks``: delivery of status and MO events to accounts' URLs."""

    timeout_seconds: float = bounded(5.0, 0, 60)  # per POST, connect included
    max_age_seconds: int = bounded(DAY, 1, 30 * DAY)  # retried until this old, then dead-lettered
    backoff_min_seconds: float = bounded(1.0, 0.01, DAY)
    backoff_max_seconds: float = bounded(300.0, 0.01, DAY)
    # POSTs in flight per account at first (never two per message); it adapts between 1 and
    # max_concurrency_per_account to the receiver's answers (worker/webhook_batches.py)
    concurrency_per_account: int = bounded(4, 1, 1000)
    max_concurrency_per_account: int = bounded(32, 1, 1000)
    queue_per_account: int = bounded(200, 1, 100_000)  # events read ahead per account
    # a dead process's accounts are taken over after this
    lease_seconds: float = bounded(30.0, 1, 3600)
    # Tenants choose the URLs: only globally routable unicast addresses, unless this is on
    # (dev mode and tests, whose receivers listen on 127.0.0.1). See worker/netguard.py.
    allow_private_networks: bool = False
    # how often the shards' copies of callback settings and MO lookups are made current again
    # (worker/store/copies.py): a copy lost to a crash is behind for at most this long
    reconcile_seconds: float = bounded(60.0, 0.1, DAY)


@dataclass(frozen=True, slots=True)
class SmppServerSettings:
    """``smsgw smpp-server``: the SMPP 3.4 front door for clients that are not HTTP."""

    host: str = "127.0.0.1"
    port: int = bounded(2776, 1, 65535)
    # TLS: both set, every connection is TLS (a TCP load balancer passes it through).
    tls_cert_file: str = ""
    tls_key_file: str = ""
    window: int = bounded(10, 1, 1000)  # deliver_sm in flight per bind, unanswered
    # A deliver_sm unanswered this long is sent again (on any receiver bind of the account).
    receipt_retry_seconds: float = bounded(30.0, 0.1, 3600)
    # Receipts and MO messages older than this are dead letters, not sent again.
    receipt_max_age_seconds: int = bounded(3 * DAY, 1, 30 * DAY)
    # A bind counts against its user's max_binds until this long after its process last
    # renewed it (a killed process's binds free up after it).
    bind_lease_seconds: float = bounded(30.0, 1, 3600)
    # Wrong passwords from one address: the first ones are answered at once, later ones
    # wait longer and longer (up to auth_delay_max_seconds), for auth_window_seconds.
    auth_failures_free: int = bounded(3, 0, 1000)
    auth_delay_max_seconds: float = bounded(10.0, 0, 300)
    auth_window_seconds: int = bounded(300, 1, DAY)
    # Nothing received for this long (not even enquire_link): the session is closed.
    inactivity_seconds: float = bounded(300.0, 1, DAY)
    # A message the client concatenated itself (UDH or SAR) whose parts have not all come
    # this long after its first is sent with the parts that did, in order.
    concat_wait_seconds: float = bounded(300.0, 0.1, DAY)
    # GET /metrics (smsgw_messages_accepted_total{door="smpp"} and the like) on this port of
    # ``host``; 0: not served. SMSGW_METRICS_TOKEN guards it as it does the gateway's.
    metrics_port: int = bounded(0, 0, 65535)
    # Built from the settings above once, at load. Not a setting.
    tls_context: ssl.SSLContext | None = field(
        default=None, compare=False, repr=False, metadata={"derived": True})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a process needs, validated."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    retention_seconds: int = bounded(7 * DAY, 60, 366 * DAY)
    # Durability: a write counts (a send is answered, an outcome or receipt recorded) only
    # once this many replicas hold it (Redis WAIT), or the wait below runs out.
    replica_acks: int = bounded(0, 0, 100)
    replica_ack_timeout_ms: int = bounded(1000, 1, MAX_REPLICA_WAIT_MS)
    gateway: GatewaySettings = GatewaySettings()
    worker: WorkerSettings = WorkerSettings()
    webhooks: WebhookSettings = WebhookSettings()
    smpp_server: SmppServerSettings = SmppServerSettings()
    channels: Mapping[str, Channel] = field(default_factory=dict)
    # [[routes]], compiled; gateway.default_channel is a last catch-all route ("default").
    routes: RouteTable = field(default_factory=RouteTable)
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
    smpp_raw = _table(raw.pop("smpp_server", {}), "smpp_server", source)
    channels_raw = _table(raw.pop("channels", {}), "channels", source)
    routes_raw = raw.pop("routes", [])
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
        name: _with_tls_context(
            _build(Channel, {**_table(body, f"channels.{name}", source), "name": name},
                   f"channels.{name}", source), source)
        for name, body in channels_raw.items()
    }
    settings = _build(
        Settings,
        {
            **raw,
            "gateway": _build(GatewaySettings, gateway_raw, "gateway", source),
            "worker": _build(WorkerSettings, worker_raw, "worker", source),
            "webhooks": _build(WebhookSettings, webhooks_raw, "webhooks", source),
            "smpp_server": _smpp_server_tls(
                _build(SmppServerSettings, smpp_raw, "smpp_server", source), source),
            "channels": channels,
            "routes": RouteTable(),
            "source": source,
        },
        "",
        source,
    )
    _check_cross_fields(settings)
    return dataclasses.replace(settings, routes=_routes(routes_raw, settings))


_ROUTE_KEYS = {"name", "channels", "fallbacks", "prefixes", "countries", "accounts", "hours",
               "days", "failover_statuses", "passes", "number_check", "senders", "by_name"}


def _routes(raw: Any, settings: Settings) -> RouteTable:
    """The [[routes]] tables, checked (file, route and problem named), plus the default
    channel as a last catch-all route."""
    src = settings.source
    if not isinstance(raw, list) or not all(isinstance(r, Mapping) for r in raw):
        raise ConfigError(f"{src}: routes: must be an array of tables ([[routes]])")
    routes = [_route(body, i, src) for i, body in enumerate(raw)]
    default = settings.gateway.default_channel
    if default:
        routes.append(Route("default", ((default, 1),)))
    try:
        check_routes(routes, settings.channels)
    except RouteError as exc:
        hint = ""
        if default and "'default'" in str(exc):
            hint = " (route 'default' is gateway.default_channel, a last catch-all route)"
        raise ConfigError(f"{src}: {exc}{hint}") from None
    return RouteTable.build(routes, settings.gateway.number_check)


def _route(body: Mapping[str, Any], i: int, src: str) -> Route:
    name = body.get("name")
    where = f"{src}: routes[{i}]" + (f" '{name}'" if isinstance(name, str) else "")
    unknown = sorted(set(body) - _ROUTE_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown setting")
    if not isinstance(name, str) or not ACCOUNT_NAME.fullmatch(name):
        raise ConfigError(f"{where}.name: required, 1 to 64 letters, digits, '.', '_' or '-'")

    def strings(key: str) -> list[str]:
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.{key}: must be a list of strings, got {value!r}")
        return value

    chans = body.get("channels", [])
    if isinstance(chans, Mapping):
        weighted = list(chans.items())
        if not all(_is_int(w) for _, w in weighted):
            raise ConfigError(f"{where}.channels: weights must be integers, got {dict(chans)}")
    else:
        weighted = [(c, 1) for c in strings("channels")]
    statuses = body.get("failover_statuses", [])
    if not isinstance(statuses, list) or not all(_is_int(v) for v in statuses):
        raise ConfigError(f"{where}.failover_statuses: must be a list of integers (SMPP "
                          f"command_status values, such as 0x0B), got {statuses!r}")
    passes = body.get("passes", 1)
    check = body.get("number_check")
    if check not in (None, "length", "libphonenumber"):
        raise ConfigError(f"{where}.number_check: must be 'length' or 'libphonenumber'")
    if not _is_int(passes):
        raise ConfigError(f"{where}.passes: must be an integer")
    hours = body.get("hours")
    if hours is not None and not isinstance(hours, str):
        raise ConfigError(f"{where}.hours: must be a string \"HH:MM-HH:MM\" (UTC)")
    try:
        window = parse_window(hours, strings("days")) if hours is not None else None
    except RouteError as exc:
        raise ConfigError(f"{where}.{exc}") from None
    if "days" in body and window is None:
        raise ConfigError(f"{where}.days: only used with hours")
    try:
        senders = Senders.of(check_entries(strings("senders")))
    except BadSender as exc:
        raise ConfigError(f"{where}.senders: {exc}") from None
    by_name = body.get("by_name", False)
    if not isinstance(by_name, bool):
        raise ConfigError(f"{where}.by_name: must be true or false")
    return Route(
        name=name, channels=tuple(weighted), fallbacks=tuple(strings("fallbacks")),
        prefixes=tuple(p.removeprefix("+") for p in strings("prefixes")),
        countries=frozenset(c.upper() for c in strings("countries")),
        accounts=frozenset(strings("accounts")), senders=senders, window=window,
        failover_statuses=frozenset(statuses), passes=passes, number_check=check,
        by_name=by_name)


def _with_tls_context(ch: Channel, source: str) -> Channel:
    """``ch`` with its SSL context, built here so that a bad file stops the process at start."""
    where = f"{source}: channels.{ch.name}"
    if not ch.tls:
        for key in ("tls_ca_file", "tls_cert_file", "tls_key_file", "tls_server_name"):
            if getattr(ch, key):
                # Most likely a forgotten `tls = true`: the password would go out in clear.
                raise ConfigError(f"{where}.{key}: only used with tls = true")
        return ch
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # verifies certificate and name
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ch.tls_ca_file:
        _readable(ch.tls_ca_file, f"{where}.tls_ca_file")
        try:
            ctx.load_verify_locations(cafile=ch.tls_ca_file)
        except ssl.SSLError as exc:
            raise ConfigError(f"{where}.tls_ca_file: no certificate in {ch.tls_ca_file} "
                              f"({exc.reason})") from None
    if ch.tls_key_file and not ch.tls_cert_file:
        raise ConfigError(f"{where}.tls_key_file: needs tls_cert_file")
    if ch.tls_cert_file:
        _readable(ch.tls_cert_file, f"{where}.tls_cert_file")
        if ch.tls_key_file:
            _readable(ch.tls_key_file, f"{where}.tls_key_file")
        _load_client_cert(ctx, ch, where)
    return dataclasses.replace(ch, tls_context=ctx)


def _smpp_server_tls(srv: SmppServerSettings, source: str) -> SmppServerSettings:
    """``srv`` with its server-side SSL context when a certificate is configured."""
    where = f"{source}: smpp_server"
    if not srv.tls_cert_file:
        if srv.tls_key_file:
            raise ConfigError(f"{where}.tls_key_file: needs tls_cert_file")
        return srv
    _readable(srv.tls_cert_file, f"{where}.tls_cert_file")
    if srv.tls_key_file:
        _readable(srv.tls_key_file, f"{where}.tls_key_file")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(srv.tls_cert_file, srv.tls_key_file or None)
    except ssl.SSLError as exc:
        raise ConfigError(f"{where}.tls_cert_file: not a PEM certificate and key "
                          f"({exc.reason})") from None
    return dataclasses.replace(srv, tls_context=ctx)


def _load_client_cert(ctx: ssl.SSLContext, ch: Channel, where: str) -> None:
    try:
        ctx.load_cert_chain(ch.tls_cert_file, ch.tls_key_file or None)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            problem = "the certificate and tls_key_file do not match"
        elif not ch.tls_key_file:
            problem = "no private key in it (set tls_key_file)"
        else:
            problem = f"not a PEM certificate and key ({exc.reason})"
        raise ConfigError(f"{where}.tls_cert_file: {problem}") from None


def _readable(path: str, name: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None


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


_NESTED = {"gateway", "worker", "webhooks", "smpp_server", "channels", "routes", "source"}


def _build(cls: type[T], values: Mapping[str, Any], where: str, source: str) -> T:
    """Instantiate a config dataclass, checking names and types of every value."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{where}.{key}" if where else key
        if key not in fields or fields[key].metadata.get("derived"):
            raise ConfigError(f"{source}: {name}: unknown setting")
        if key in _NESTED and not where:
            kwargs[key] = value
            continue
        kwargs[key] = _coerce(hints[key], value, name, source)
        bounds = fields[key].metadata.get("bounds")
        if bounds is not None and not bounds[0] <= kwargs[key] <= bounds[1]:
            raise ConfigError(f"{source}: {name}: must be between {bounds[0]:g} and "
                              f"{bounds[1]:g}, got {kwargs[key]:g}")
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
        if ch.name.startswith("route:"):
            raise ConfigError(f"{where}: a channel name must not start with 'route:' (a "
                              f"message naming '{ch.name}' names route '{ch.name[6:]}')")
        if len(ch.system_id) > 15:
            raise ConfigError(f"{where}.system_id: at most 15 characters (SMPP 3.4)")
        if len(ch.password) > 8:
            raise ConfigError(f"{where}.password: at most 8 characters (SMPP 3.4)")
        if ch.reconnect_max_seconds < ch.reconnect_min_seconds:
            raise ConfigError(f"{where}.reconnect_max_seconds: must be >= reconnect_min_seconds")
        if ch.mo_default_account and not ACCOUNT_NAME.fullmatch(ch.mo_default_account):
            raise ConfigError(f"{where}.mo_default_account: must be an account name (1 to 64 "
                              f"letters, digits, '.', '_' or '-'), got {ch.mo_default_account!r}")
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
    _check_webhooks(settings.webhooks, src)


def _check_webhooks(wh: WebhookSettings, src: str) -> None:
    where = f"{src}: webhooks"
    # The bounds allow 0 (the range is 0 to 60): a POST needs some time.
    if wh.timeout_seconds <= 0:
        raise ConfigError(f"{where}.timeout_seconds: must be above 0 and at most 60")
    if wh.backoff_min_seconds > wh.backoff_max_seconds:
        raise ConfigError(f"{where}.backoff_min_seconds: must be above 0 and at most "
                          "backoff_max_seconds")
    if wh.queue_per_account < wh.concurrency_per_account:
        raise ConfigError(f"{where}.queue_per_account: must be at least concurrency_per_account "
                          "(itself at least 1)")
    if wh.lease_seconds <= wh.timeout_seconds:
        raise ConfigError(f"{where}.lease_seconds: must exceed timeout_seconds")
