"""The key limits run in front of the accept script, in its Redis call: they must keep to
arguments the accept script leaves free."""

from __future__ import annotations

import re

from worker import store


def _used(kind: str, lua: str) -> set[int]:
    return {int(n) for n in re.findall(rf"{kind}\[(\d+)\]", lua)}


def test_the_limit_preamble_uses_only_arguments_the_accept_script_leaves_free() -> None:
    assert max(_used("ARGV", store._ACCEPT)) == 8
    assert max(_used("KEYS", store._ACCEPT)) == 2
    assert _used("ARGV", store._LIMITS_LUA) == {9, 10, 11, 12}
    assert _used("KEYS", store._LIMITS_LUA) == {3, 4}
