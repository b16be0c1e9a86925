"""[[routes]] in the config: read in order, checked at start, errors name file, route, problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from worker.config import ConfigError, load_settings
from worker.routing import Routed

CHANNELS = """
[channels.a]
port = 2775
[channels.b]
port = 2776
[channels.c]
port = 2777
"""


def _load(tmp_path: Path, text: str) -> tuple[Path, dict[str, str]]:
    path = tmp_path / "smsgw.toml"
    path.write_text(text + CHANNELS)
    return path, {"SMSGW_CONFIG": str(path)}


def test_routes_are_read_in_order_with_weights_fallbacks_and_windows(tmp_path: Path) -> None:
    _, env = _load(tmp_path, """
[[routes]]
name = "fr"
countries = ["fr"]
channels = { b = 3, c = 1 }
fallbacks = ["a"]
failover_statuses = [0x0B, 0x45]
hours = "08:00-20:00"
days = ["mon", "fri"]
number_check = "libphonenumber"
[[routes]]
name = "za"
prefixes = ["+27"]
accounts = ["acme"]
channels = ["a"]
passes = 2
""")
    routes = load_settings(env).routes.routes
    assert [r.name for r in routes] == ["fr", "za"]
    fr, za = routes
    assert fr.channels == (("b", 3), ("c", 1)) and fr.fallbacks == ("a",)
    assert fr.countries == {"FR"} and fr.failover_statuses == {0x0B, 0x45}
    assert fr.window is not None and fr.window.days == {0, 4}
    assert fr.number_check == "libphonenumber"
    assert za.prefixes == ("27",) and za.accounts == {"acme"} and za.passes == 2


def test_a_route_reads_its_senders_and_by_name(tmp_path: Path) -> None:
    _, env = _load(tmp_path, """
[gateway]
default_channel = "a"
[[routes]]
name = "brands"
senders = ["Acme", "+4470*"]
channels = ["b"]
[[routes]]
name = "premium"
channels = ["c"]
by_name = true
""")
    table = load_settings(env).routes
    brands, premium, _ = table.routes
    assert brands.senders.entries == ("Acme", "+4470*") and not brands.by_name
    assert premium.by_name and not premium.senders
    got = table.choose("27821234567", "x", sender="447012345678")
    assert isinstance(got, Routed) and got.route == "brands"
    got = table.choose("27821234567", "x")  # 'premium' is for messages naming it
    assert isinstance(got, Routed) and got.route == "default"


def test_default_channel_is_a_last_catch_all_route(tmp_path: Path) -> None:
    _, env = _load(tmp_path, """
[gateway]
default_channel = "c"
[[routes]]
name = "za"
prefixes = ["27"]
channels = ["a"]
""")
    table = load_settings(env).routes
    assert [r.name for r in table.routes] == ["za", "default"]
    got = table.choose("33612345678", "acme")
    assert isinstance(got, Routed) and (got.route, got.channel) == ("default", "c")


@pytest.mark.parametrize(("toml", "problem"), [
    ('[[routes]]\nname = "x"\nchannels = ["nope"]\n',
     "routes[0] 'x'.channels: no channel named 'nope'"),
    ('[[routes]]\nname = "x"\nchannels = { a = 0 }\n',
     "routes[0] 'x'.channels: the weight of 'a' must be positive, got 0"),
    ('[[routes]]\nname = "x"\nchannels = { a = -2 }\n', "must be positive, got -2"),
    ('[[routes]]\nname = "x"\nchannels = { a = 1.5 }\n', "weights must be integers"),
    ('[[routes]]\nname = "all"\nchannels = ["a"]\n[[routes]]\nname = "za"\n'
     'prefixes = ["27"]\nchannels = ["b"]\n',
     "routes[1] 'za': unreachable: routes[0] 'all' before it matches every message"),
    ('[[routes]]\nname = "x"\nchannels = ["a"]\nhours = "8-20"\n',
     "routes[0] 'x'.hours: must be \"HH:MM-HH:MM\""),
    ('[[routes]]\nname = "x"\nchannels = ["a"]\nprefix = ["27"]\n',
     "routes[0] 'x'.prefix: unknown setting"),
    ('[[routes]]\nchannels = ["a"]\n', "routes[0].name: required"),
    ('[gateway]\ndefault_channel = "a"\n[[routes]]\nname = "all"\nchannels = ["b"]\n',
     "routes[1] 'default': unreachable: routes[0] 'all'"),
    ('[[routes]]\nname = "x"\nchannels = ["a"]\nsenders = ["44*70"]\n',
     "routes[0] 'x'.senders: sender '44*70' is not a sender"),
    ('[[routes]]\nname = "x"\nchannels = ["a"]\nsenders = "Acme"\n',
     "routes[0] 'x'.senders: must be a list of strings"),
    ('[[routes]]\nname = "x"\nchannels = ["a"]\nby_name = "yes"\n',
     "routes[0] 'x'.by_name: must be true or false"),
])
def test_a_bad_route_stops_the_process_naming_file_route_and_problem(
    tmp_path: Path, toml: str, problem: str
) -> None:
    path, env = _load(tmp_path, toml)
    with pytest.raises(ConfigError) as exc:
        load_settings(env)
    assert str(exc.value).startswith(f"{path}: ")
    assert problem in str(exc.value)


def test_the_gateway_process_will_not_start_with_an_unreachable_route(tmp_path: Path) -> None:
    path, env = _load(tmp_path, '[[routes]]\nname = "all"\nchannels = ["a"]\n[[routes]]\n'
                                'name = "za"\nprefixes = ["27"]\nchannels = ["b"]\n')
    done = subprocess.run([sys.executable, "-m", "gateway", "routes", "list"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"{path}: routes[1] 'za': unreachable" in done.stderr


def test_a_channel_named_like_a_route_is_refused(tmp_path: Path) -> None:
    path, env = _load(tmp_path, '[channels."route:x"]\nport = 2778\n')
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert str(err.value) == (f"{path}: channels.route:x: a channel name must not start with "
                              "'route:' (a message naming 'route:x' names route 'x')")
