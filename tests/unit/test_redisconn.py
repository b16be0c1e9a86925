"""Redis URLs: direct and Sentinel forms, as clients and as arq settings."""

from __future__ import annotations

import pytest

from worker.config import ConfigError, settings_from_dict
from worker.redisconn import (
    SentinelTarget,
    arq_redis_pool,
    arq_redis_settings,
    check_redis_url,
    parse_sentinel_url,
)


def test_a_sentinel_url_names_its_sentinels_service_and_db() -> None:
    target = parse_sentinel_url("redis+sentinel://s1:26380,s2,[::1]:26381/mymaster/3")
    assert target == SentinelTarget(
        sentinels=(("s1", 26380), ("s2", 26379), ("::1", 26381)), service="mymaster", db=3)


def test_a_sentinel_url_carries_data_and_sentinel_passwords_apart() -> None:
    target = parse_sentinel_url(
        "redis+sentinel://app:p%40ss@h1:26379/cache?db=2&sentinel_password=sp")
    assert (target.username, target.password, target.sentinel_password, target.db) == (
        "app", "p@ss", "sp", 2)
    assert "p@ss" not in repr(target) and "'sp'" not in repr(target)


@pytest.mark.parametrize(("url", "complaint"), [
    ("redis+sentinel://h1:26379", "service"),
    ("redis+sentinel://h1:26379/a/b/c", "service"),
    ("redis+sentinel://h1:notaport/mymaster", "port"),
    ("redis+sentinel://h1:70000/mymaster", "port"),
    ("redis+sentinel://:26379/mymaster", "host"),
    ("redis+sentinel://h1/mymaster/x", "database"),
    ("http://h1:6379/0", r"or redis\+sentinel://"),
])
def test_a_bad_redis_url_is_refused_with_its_reason(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        check_redis_url(url)


def test_config_refuses_a_bad_sentinel_url_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"redis_url: .*service"):
        settings_from_dict({}, {"REDIS_URL": "redis+sentinel://h1"}, source="env")


def test_config_refuses_a_replica_wait_a_client_would_time_out_on() -> None:
    with pytest.raises(ConfigError, match="replica_ack_timeout_ms"):
        settings_from_dict({"replica_acks": 1, "replica_ack_timeout_ms": 60_000}, {}, "t.toml")


def test_arq_gets_sentinel_settings_and_a_pool_for_a_sentinel_url() -> None:
    settings = arq_redis_settings("redis+sentinel://h1:1,h2:2/svc/4")
    assert settings.sentinel and settings.host == [("h1", 1), ("h2", 2)]
    assert (settings.sentinel_master, settings.database) == ("svc", 4)
    assert arq_redis_pool("redis+sentinel://h1:1,h2:2/svc/4") is not None


def test_arq_connects_by_itself_for_a_direct_url() -> None:
    settings = arq_redis_settings("redis://h:6380/2")
    assert (settings.host, settings.port, settings.database, settings.sentinel) == (
        "h", 6380, 2, False)
    assert arq_redis_pool("redis://h:6380/2") is None
