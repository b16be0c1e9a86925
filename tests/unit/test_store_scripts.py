"""The store's Lua loader: includes resolved by name, the prefix never spelled in Lua."""

from __future__ import annotations

from importlib.resources import files

import pytest

from worker.lifecycle import FINAL
from worker.store import PREFIX, scripts
from worker.store.scripts import INCLUDE, ScriptError, resolve

LUA = files("worker.store").joinpath("lua")


def _lua_files() -> list[str]:
    found = []
    for folder in (LUA, LUA.joinpath("includes")):
        found += [f.read_text(encoding="utf-8") for f in folder.iterdir()
                  if f.name.endswith(".lua")]
    return found


def test_resolve_replaces_an_include_by_its_fragment() -> None:
    text = 'local a = 1\n--- @include "two"\nreturn a + b\n'
    assert resolve(text, {"two": "local b = 2\n"}.__getitem__) == (
        "local a = 1\nlocal b = 2\nreturn a + b\n")


def test_resolve_includes_a_fragment_once_its_own_includes_first() -> None:
    fragments = {"base": "B\n", "mid": '--- @include "base"\nM\n'}
    text = '--- @include "mid"\n--- @include "base"\nS\n'
    assert resolve(text, fragments.__getitem__) == "B\nM\n\nS\n"


def test_resolve_refuses_an_include_cycle() -> None:
    fragments = {"a": '--- @include "b"\n', "b": '--- @include "a"\n'}
    with pytest.raises(ScriptError, match="a -> b -> a"):
        resolve('--- @include "a"\n', fragments.__getitem__)


def test_an_unknown_include_is_an_error() -> None:
    with pytest.raises(ScriptError, match=r"no Lua file includes/nowhere\.lua"):
        scripts._fragment("nowhere")


def test_no_lua_file_spells_the_key_prefix() -> None:
    texts = _lua_files()
    assert len(texts) > 20
    assert not [t for t in texts if PREFIX in t or "smsgw" in t]


def test_every_script_resolves_with_no_include_left() -> None:
    assert "accept" in scripts.names() and "record_outcomes" in scripts.names()
    for name in scripts.names():
        assert not INCLUDE.search(scripts.source(name)), name


def test_every_script_opens_with_its_inputs_output_and_events() -> None:
    for name in scripts.names():
        head = LUA.joinpath(f"{name}.lua").read_text(encoding="utf-8").split("]]")[0]
        assert head.startswith("--[["), name
        assert "Output:" in head and "Events" in head, name


def test_the_prefix_and_the_lifecycle_come_from_python() -> None:
    made = scripts.generated()
    assert f"local P = '{PREFIX}'" in made["keys"]
    assert all(f'["{s}"]=true' in made["lifecycle"] for s in FINAL)
    # a script that moves messages gets both; one that does not, neither
    assert made["lifecycle"] in scripts.source("claim")
    assert made["keys"] in scripts.source("claim")
    assert "local P" not in scripts.source("take_tokens")
