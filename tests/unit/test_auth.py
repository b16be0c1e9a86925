"""Pure parts of API key auth: credentials, key specs, expiry, roles, tenancy and limit errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from gateway.auth import (
    InvalidKey,
    KeyInfo,
    KeySpec,
    Principal,
    check_spec,
    credential,
    hash_secret,
    key_fields,
    key_info,
    limit_error,
    new_secret,
    parse_expiry,
)
from gateway.errors import BadRequest, Forbidden, RateLimited
from gateway.views.granting import may_manage
from worker.store import KeyLimits, LimitExceeded

NOW = 1_800_000_000_000  # a fixed "now" in epoch ms


def _basic(user: str, password: str = "") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _principal(roles: set[str], account: str = "p", children: set[str] | None = None) -> Principal:
    return Principal(key_id="k", name="n", account=account, roles=frozenset(roles),
                     channels=None, children=frozenset(children or ()))


def _key(roles: set[str], account: str) -> KeyInfo:
    return key_info({"id": "x", "account": account, "roles": ",".join(roles)})


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Authorization": "Bearer sk_abc"}, "sk_abc"),
    ({"Authorization": "bearer   sk_abc  "}, "sk_abc"),
    (_basic("sk_abc"), "sk_abc"),
    (_basic("sk_abc", "secret"), None),  # the key is the user name; the password stays empty
    (_basic(""), None),
    ({"Authorization": "Basic !!!not-base64"}, None),
    ({"Authorization": "Bearer "}, None),
    ({"Authorization": "Digest sk_abc"}, None),
    ({}, None),
])
def test_credential_follows_servicestack_api_key_conventions(
    headers: dict[str, str], expected: str | None
) -> None:
    assert credential(headers) == expected


def test_new_keys_carry_at_least_128_random_bits_and_differ() -> None:
    keys = {new_secret() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        body = key.removeprefix("sk_")
        assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) * 8 >= 128


def test_the_stored_form_of_a_key_is_its_sha256_and_holds_no_secret() -> None:
    secret = new_secret()
    fields = key_fields(check_spec(KeySpec(name="n", account="acme"), NOW), "id1", NOW)
    assert len(hash_secret(secret)) == 64 and secret not in hash_secret(secret)
    assert all(secret not in v for v in fields.values())


def test_a_record_reads_back_as_the_spec_it_was_made_from() -> None:
    spec = check_spec(KeySpec(name="n", account="acme", roles=frozenset({"Client", "Partner"}),
                              channels=frozenset({"a", "b"}), rate=5, burst=20, daily_quota=900,
                              expires_at_ms=NOW + 1000), NOW)
    info = key_info({**key_fields(spec, "id1", NOW), "parent": "boss"})
    assert (info.key_id, info.account, info.parent_account) == ("id1", "acme", "boss")
    assert info.roles == {"Client", "Partner"} and info.channels == {"a", "b"}
    assert (info.rate, info.burst, info.daily_quota) == (5, 20, 900)
    assert info.enabled and info.expires_at_ms == NOW + 1000 and info.created_at_ms == NOW
    assert key_info(key_fields(check_spec(KeySpec(name="n", account="a"), NOW), "i",
                               NOW)).channels is None


def test_burst_defaults_to_one_second_of_the_rate() -> None:
    assert check_spec(KeySpec(name="n", account="a", rate=7), NOW).burst == 7
    assert check_spec(KeySpec(name="n", account="a", rate=7, burst=2), NOW).burst == 2


@pytest.mark.parametrize(("spec", "field"), [
    (KeySpec(name="", account="acme"), "name"),
    (KeySpec(name="n", account="ac:me"), "account"),  # ':' would reach into Redis key names
    (KeySpec(name="n", account=""), "account"),
    (KeySpec(name="n", account="acme", parent_account="a,b"), "parentAccount"),
    (KeySpec(name="n", account="acme", parent_account="acme"), "parentAccount"),
    (KeySpec(name="n", account="acme", roles=frozenset()), "roles"),
    (KeySpec(name="n", account="acme", roles=frozenset({"Root"})), "roles"),
    (KeySpec(name="n", account="acme", channels=frozenset()), "channels"),
    (KeySpec(name="n", account="acme", rate=-1), "rate"),
    (KeySpec(name="n", account="acme", expires_at_ms=NOW), "expiresAt"),
])
def test_invalid_key_specs_name_the_field_at_fault(spec: KeySpec, field: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        check_spec(spec, NOW)
    assert caught.value.field == field


@pytest.mark.parametrize(("text", "expected"), [
    ("", 0),
    ("never", 0),
    ("90s", NOW + 90_000),
    ("30d", NOW + 30 * 86_400_000),
    ("2w", NOW + 14 * 86_400_000),
    ("2030-01-01T12:00:00Z", int(datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp() * 1000)),
    ("2030-01-01T12:00:00", int(datetime(2030, 1, 1, 12, tzinfo=UTC).timestamp() * 1000)),
    ("2030-01-01", int(datetime(2030, 1, 2, tzinfo=UTC).timestamp() * 1000)),  # whole day
])
def test_expiry_accepts_spans_and_iso_dates_in_utc(text: str, expected: int) -> None:
    assert parse_expiry(text, NOW) == expected


def test_an_unreadable_expiry_is_an_invalid_key() -> None:
    with pytest.raises(InvalidKey):
        parse_expiry("next tuesday", NOW)


@pytest.mark.parametrize("text", ["999999w", "9999-12-31", "9999-12-31T23:59:59Z", "5300w",
                                  "3654d"])
def test_expiries_beyond_ten_years_are_invalid_keys_naming_expires_at(text: str) -> None:
    with pytest.raises(InvalidKey) as caught:
        check_spec(KeySpec(name="n", account="acme", expires_at_ms=parse_expiry(text, NOW)), NOW)
    assert caught.value.field == "expiresAt" and "10 years" in caught.value.message


def test_an_expiry_within_ten_years_is_kept() -> None:
    spec = KeySpec(name="n", account="acme", expires_at_ms=parse_expiry("3650d", NOW))
    assert check_spec(spec, NOW).expires_at_ms == NOW + 3650 * 86_400_000


@pytest.mark.parametrize("stored", ["604799395200000000", "-604799395200000000",
                                    "253402300800000", "99999999999999999999999"])
def test_every_stored_expiry_can_be_shown(stored: str) -> None:
    fields = key_fields(KeySpec(name="n", account="acme"), "id1", NOW) | {"expires_at": stored}
    shown = key_info(fields).as_dict()["expiresAt"]
    assert isinstance(shown, str) and datetime.fromisoformat(shown)


def test_admin_passes_every_role_check_and_others_need_one_of_the_roles() -> None:
    _principal({"Admin"}).require_any(frozenset({"Partner"}))
    _principal({"Partner"}).require_any(frozenset({"Admin", "Partner"}))
    with pytest.raises(Forbidden):
        _principal({"Client"}).require_any(frozenset({"Admin", "Partner"}))
    with pytest.raises(Forbidden):
        _principal(set()).require_any(frozenset({"Client"}))


def test_accounts_seen_by_client_partner_and_admin() -> None:
    client = _principal({"Client"}, "acme", children={"kid"})  # children count for Partners only
    partner = _principal({"Partner"}, "reseller", children={"kid"})
    admin = _principal({"Admin"}, "ops")
    assert client.sees_account("acme") and not client.sees_account("kid")
    assert partner.sees_account("reseller") and partner.sees_account("kid")
    assert not partner.sees_account("acme")
    assert admin.sees_account("acme") and admin.sees_account("anything")


def test_partners_manage_only_client_keys_of_accounts_they_own() -> None:
    partner = _principal({"Partner"}, "reseller", children={"kid"})
    assert may_manage(partner, _key({"Client"}, "kid"))
    assert not may_manage(partner, _key({"Client", "Partner"}, "kid"))
    assert not may_manage(partner, _key({"Client"}, "reseller"))
    assert not may_manage(partner, _key({"Client"}, "acme"))
    assert not may_manage(_principal({"Client"}, "kid"), _key({"Client"}, "kid"))
    assert may_manage(_principal({"Admin"}), _key({"Admin"}, "ops"))


def test_limits_answer_429_with_retry_after_rounded_up_and_a_code_per_reason() -> None:
    limits = KeyLimits(key_id="k", rate=5, burst=10, daily_quota=100)
    rate = limit_error(LimitExceeded("rate", 1_001), limits)
    quota = limit_error(LimitExceeded("quota", 3_600_000), limits)
    soon = limit_error(LimitExceeded("rate", 1), limits)
    assert isinstance(rate, RateLimited) and rate.status == 429
    assert (rate.code, rate.headers["Retry-After"]) == ("RateLimitExceeded", "2")
    assert (quota.code, quota.headers["Retry-After"]) == ("QuotaExceeded", "3600")
    assert soon.headers["Retry-After"] == "1"


def test_a_request_larger_than_the_burst_is_a_bad_request_not_a_wait() -> None:
    error = limit_error(LimitExceeded("burst", 0), KeyLimits(key_id="k", rate=5, burst=10))
    assert isinstance(error, BadRequest) and error.field_errors[0][1] == "Messages"
    assert "10" in error.message
