"""``smsgw routes list|test``: the operator sees the routes and where a number would go."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main

CONFIG = """
[gateway]
default_channel = "c"
[[routes]]
name = "za-night"
prefixes = ["27"]
hours = "22:00-06:00"
channels = ["b"]
[[routes]]
name = "za"
prefixes = ["27"]
channels = { a = 3, b = 1 }
fallbacks = ["c"]
failover_statuses = [0x0B]
[[routes]]
name = "acme-brand"
senders = ["Acme", "4470*"]
channels = ["a"]
[[routes]]
name = "premium"
by_name = true
channels = ["b"]
[[routes]]
name = "france"
countries = ["FR"]
number_check = "libphonenumber"
channels = ["c"]
[channels.a]
[channels.b]
[channels.c]
"""


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "smsgw.toml"
    path.write_text(CONFIG)
    monkeypatch.setenv("SMSGW_CONFIG", str(path))


def test_routes_list_shows_every_route_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["za-night", "za", "acme-brand", "premium", "france",
                                                "default"]
    assert "-> a:75% b:25% then c failover-on=0x0000000B" in lines[1]


def test_routes_list_json_is_the_admin_api_shape(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "list", "--json"]) == 0
    za = json.loads(capsys.readouterr().out)[1]
    assert za["channels"] == [{"channel": "a", "weight": 3}, {"channel": "b", "weight": 1}]
    assert za["failoverStatuses"] == ["0x0000000B"]


@pytest.mark.parametrize(("argv", "status", "text"), [
    (["+27821234567", "--at", "2024-05-06T12:00:00+00:00"], 0,
     "+27821234567: route 'za': a 75%, b 25%; fails over along a -> b -> c"),
    (["+27821234567", "--at", "2024-05-06T23:00:00+00:00"], 0, "route 'za-night': b 100%"),
    (["+33612345678"], 0, "route 'france': c 100%"),
    (["+3361234567"], 1, "route 'france': not accepted: '+3361234567' is not a valid number "
                         "for FR"),
    (["+12025550123"], 0, "route 'default': c 100%"),
])
def test_routes_test_says_where_a_number_goes_and_why(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, text: str
) -> None:
    assert main(["routes", "test", *argv, "--parent", ""]) == status
    assert text in capsys.readouterr().out


def test_routes_list_shows_senders_and_routes_used_by_name(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["routes", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "senders=Acme,4470*" in lines[2]
    assert lines[3].endswith("-> b:100% (by name only)")
    assert main(["routes", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[2]["senders"] == ["Acme", "4470*"] and listed[3]["byName"] is True


@pytest.mark.parametrize(("argv", "status", "text"), [
    (["+33612345678", "--sender", "Acme"], 0, "route 'acme-brand': a 100%"),
    (["+33612345678", "--sender", "+447012345678"], 0, "route 'acme-brand': a 100%"),
    (["+33612345678", "--sender", "Other"], 0, "route 'france': c 100%"),
    (["+33612345678"], 0, "route 'france': c 100%"),
    (["+33612345678", "--route", "premium"], 0, "route 'premium': b 100%"),
    (["+33612345678", "--route", "acme-brand", "--sender", "Other"], 1,
     "route 'acme-brand' does not send to +33612345678 for account '' from sender 'Other'"),
])
def test_routes_test_takes_the_sender_and_a_named_route(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, text: str
) -> None:
    assert main(["routes", "test", *argv, "--parent", ""]) == status
    assert text in capsys.readouterr().out


def test_routes_test_refuses_a_sender_that_cannot_be_one(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["routes", "test", "+33612345678", "--sender", "Acme,Inc", "--parent", ""]) == 2
    assert "sender 'Acme,Inc' is not a sender" in capsys.readouterr().err
