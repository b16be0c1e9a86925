"""Static checks of compose.yaml, Dockerfile, .dockerignore and deploy/smsgw.example.toml.

No Docker engine runs here, so these tests check what can be checked without one: that every
command compose runs is one the real CLI parses, that ports, probes, accounts and config paths
agree with each other across the files, and that the image is built the way it is described.
compose.yaml is read with PyYAML's safe loader, refusing what compose would read otherwise
(duplicate keys, YAML 1.1's yes/no booleans and base-60 numbers): an error, never a silent guess.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fnmatch
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web

from gateway import cli
from worker.config import (
    ENV_VARS,
    Channel,
    GatewaySettings,
    SmppServerSettings,
    WebhookSettings,
    WorkerSettings,
    load_settings,
)
from worker.logs import config_secrets
from worker.redisproc import free_port
from worker.simulator import cli as sim_cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
EXAMPLE_TOML = ROOT / "deploy" / "smsgw.example.toml"

SMSGW_SERVICES = ("gateway", "worker", "webhooks", "smpp-server", "smsc-sim")
# gateway.cli.main hands everything after these subcommands to another parser, unparsed.
DELEGATED_PARSERS: Mapping[str, Callable[[], argparse.ArgumentParser]] = {
    "smsc-sim": sim_cli.build_parser,
}


# --- reading compose.yaml -----------------------------------------------------------------------


class ComposeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing what compose (YAML 1.2) would read otherwise than PyYAML
    (YAML 1.1): duplicate keys (one silently wins), yes/no/on/off as booleans and 22:22 as a
    base-60 number (quote them)."""


def _mapping(loader: ComposeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:  # the keys written here; merged ones (<<:) may be overridden
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node)


def _bool(loader: ComposeLoader, node: yaml.ScalarNode) -> bool:
    if node.value.lower() not in ("true", "false"):
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is a boolean only in YAML 1.1: quote it", node.start_mark)
    return bool(loader.construct_yaml_bool(node))


def _int(loader: ComposeLoader, node: yaml.ScalarNode) -> int:
    if ":" in node.value:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is a number only in YAML 1.1: quote it", node.start_mark)
    return int(loader.construct_yaml_int(node))


ComposeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
ComposeLoader.add_constructor("tag:yaml.org,2002:bool", _bool)
ComposeLoader.add_constructor("tag:yaml.org,2002:int", _int)


def load_compose_yaml(text: str) -> Any:
    """``text`` as compose reads it (see ComposeLoader)."""
    return yaml.load(text, Loader=ComposeLoader)


# --- compose helpers ---------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_DURATION_PART = re.compile(r"(\d+)(ms|h|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def interpolate_unset(value: str) -> str:
    """``value`` as compose sees it when none of the variables it names is set."""

    def default(match: re.Match[str]) -> str:
        if match.group(2) in (":?", "?"):
            raise ValueError(f"{match.group(0)} makes the variable mandatory")
        return match.group(3) or ""

    return _INTERPOLATION.sub(default, value)


def duration_seconds(text: str) -> float:
    """A compose duration such as ``30s`` or ``1m30s`` in seconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a compose duration: {text!r}")
    return sum(int(n) * _DURATION_UNITS[u] for n, u in parts)


def compose() -> dict[str, Any]:
    """compose.yaml, parsed."""
    document = load_compose_yaml(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def service(name: str) -> dict[str, Any]:
    """One service of compose.yaml."""
    body = compose()["services"][name]
    assert isinstance(body, dict), f"service {name} is not a mapping"
    return body


def probe_url(svc: Mapping[str, Any]) -> tuple[str, str]:
    """The python snippet of an HTTP healthcheck and the URL it requests."""
    test = svc["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4, test
    urls = re.findall(r"http://[^'\"\s]+", test[3])
    assert len(urls) == 1, f"expected one URL in {test[3]!r}"
    return test[3], urls[0]


def mounted_config(svc: Mapping[str, Any]) -> tuple[Path, str, str]:
    """(host file, container path, mode) of the volume holding SMSGW_CONFIG."""
    container_path = svc["environment"]["SMSGW_CONFIG"]
    for volume in svc["volumes"]:
        host, _, rest = interpolate_unset(volume).partition(":")
        target, _, mode = rest.partition(":")
        if target == container_path:
            return (COMPOSE.parent / host).resolve(), target, mode
    raise AssertionError(f"nothing is mounted at {container_path}")


# --- Dockerfile helpers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    args: str

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of ENTRYPOINT/CMD arguments."""
        value = json.loads(self.args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), self.args
        return value


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions in order; comment lines (also inside continuations) are dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            keyword, _, args = pending.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
            pending = ""
    assert not pending, "Dockerfile ends inside a continuation"
    return instructions


def dockerfile() -> list[Instruction]:
    """The Dockerfile, parsed."""
    return parse_dockerfile(DOCKERFILE.read_text())


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    """The instructions from the last FROM on: what the shipped image is made of."""
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1]:]


def base_image(ins: Instruction) -> str:
    """The image a FROM instruction starts from."""
    words = [w for w in ins.args.split() if not w.startswith("--")]
    return words[0]


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps ``path`` (relative to the context) out of the build."""
    patterns = [p.strip().strip("/") for p in DOCKERIGNORE.read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions are not checked here"
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: k + 1]) for k in range(len(parts))]
    return any(_ignores(p, prefix) for p in patterns for prefix in prefixes)


def _ignores(pattern: str, path: str) -> bool:
    if pattern.startswith("**/"):
        parts = path.split("/")
        return any(fnmatch.fnmatchcase("/".join(parts[j:]), pattern[3:])
                   for j in range(len(parts)))
    return fnmatch.fnmatchcase(path, pattern)


def pyproject() -> dict[str, Any]:
    """pyproject.toml, parsed."""
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


# --- CLI helpers -------------------------------------------------------------------------------


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands a parser offers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError(f"{parser.prog} has no subcommands")


def parse_or_fail(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` the way the command would, failing the test on a usage error."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"{parser.prog} rejects {argv} (exit {exc.code})")


def parse_smsgw(argv: list[str]) -> argparse.Namespace:
    """Parse ``smsgw ARGV`` with the real parsers, following gateway.cli's hand-offs."""
    assert argv, "empty command"
    assert argv[0] in subcommands(cli.build_parser()), f"smsgw has no subcommand {argv[0]!r}"
    delegate = DELEGATED_PARSERS.get(argv[0])
    if delegate is not None:
        return parse_or_fail(delegate(), argv[1:])
    return parse_or_fail(cli.build_parser(), argv)


# --- reading compose.yaml ---------------------------------------------------------------------


def test_compose_yaml_may_use_ordinary_yaml() -> None:
    text = (
        "x-common: &common\n"
        "  restart: unless-stopped\n"
        "  environment: {A: \"1\"}\n"
        "services:\n"
        "  a:\n"
        "    <<: *common\n"
        "    restart: always  # overrides the merged value\n"
        "    command: >\n"
        "      smsgw gateway\n"
        "    ports:\n"
        "      - \"8080:80\"\n"
        "      - target: 80\n"
        "    healthcheck: {disable: true}\n"
    )
    assert load_compose_yaml(text)["services"]["a"] == {
        "restart": "always", "environment": {"A": "1"}, "command": "smsgw gateway\n",
        "ports": ["8080:80", {"target": 80}], "healthcheck": {"disable": True},
    }


@pytest.mark.parametrize("text", [
    "a: 1\na: 2\n",  # duplicate key: PyYAML keeps the last, silently
    "a:\n  b: 1\n  b: 2\n",
    "a: yes\n",  # a boolean in YAML 1.1, a string in 1.2 (compose)
    "a: off\n",
    "a: 22:22\n",  # base-60 in YAML 1.1 (1342), a string in 1.2
    "a: !!python/name:os.system\n",  # never more than plain data
])
def test_compose_yaml_that_yaml_versions_read_differently_is_refused(text: str) -> None:
    with pytest.raises(yaml.YAMLError):
        load_compose_yaml(text)


# --- compose.yaml ------------------------------------------------------------------------------


def test_compose_defines_redis_gateway_worker_webhooks_smpp_server_and_simulator() -> None:
    assert set(compose()["services"]) == {"redis", "gateway", "worker", "webhooks",
                                          "smpp-server", "smsc-sim"}


@pytest.mark.parametrize("name", SMSGW_SERVICES)
def test_service_command_is_one_the_smsgw_cli_parses(name: str) -> None:
    command = service(name)["command"]
    assert isinstance(command, list), "exec form, so no shell sits between Docker and smsgw"
    parse_smsgw(command)


def test_image_default_command_is_one_the_smsgw_cli_parses() -> None:
    cmds = [ins for ins in final_stage(dockerfile()) if ins.keyword == "CMD"]
    assert cmds, "no default CMD"
    parse_smsgw(cmds[-1].exec_form())


@pytest.mark.parametrize("name", ["gateway", "smpp-server", "smsc-sim"])
def test_listeners_bind_all_interfaces_inside_their_container(name: str) -> None:
    # Both default to 127.0.0.1, which other containers and published ports cannot reach.
    assert parse_smsgw(service(name)["command"]).host == "0.0.0.0"


def test_gateway_publishes_and_probes_the_port_it_listens_on() -> None:
    gateway = service("gateway")
    port = parse_smsgw(gateway["command"]).port
    published = [interpolate_unset(p).rpartition(":")[2] for p in gateway["ports"]]
    assert published == [str(port)]
    _, url = probe_url(gateway)
    assert (urlsplit(url).port, urlsplit(url).path) == (port, "/health/ready")


def test_worker_probes_its_own_health_port() -> None:
    worker = service("worker")
    health_port = parse_smsgw(worker["command"]).health_port
    _, url = probe_url(worker)
    assert (urlsplit(url).port, urlsplit(url).path) == (health_port, "/health/ready")


def test_worker_can_be_scaled() -> None:
    worker = service("worker")
    assert "container_name" not in worker
    assert "ports" not in worker


def test_compose_passes_only_environment_variables_smsgw_reads() -> None:
    for name in SMSGW_SERVICES:
        unknown = set(service(name).get("environment") or {}) - set(ENV_VARS)
        assert not unknown, f"{name} passes {unknown}, not in worker.config.ENV_VARS"


def test_gateway_and_worker_get_redis_url_and_config_path_from_compose() -> None:
    services = set(compose()["services"])
    for name in ("gateway", "worker"):
        env = service(name)["environment"]
        assert {"REDIS_URL", "SMSGW_CONFIG"} <= set(env)
        assert urlsplit(interpolate_unset(env["REDIS_URL"])).hostname in services


def test_bootstrap_admin_key_comes_only_from_the_environment() -> None:
    env = service("gateway")["environment"]
    assert re.fullmatch(r"\$\{SMSGW_BOOTSTRAP_ADMIN_KEY(:-)?\}", env["SMSGW_BOOTSTRAP_ADMIN_KEY"])
    assert "SMSGW_BOOTSTRAP_ADMIN_KEY" not in (service("worker").get("environment") or {})
    assert "admin_bootstrap_key" not in tomllib.loads(EXAMPLE_TOML.read_text())["gateway"]


def test_the_metrics_token_comes_only_from_the_environment_and_is_a_logged_secret() -> None:
    env = service("gateway")["environment"]
    assert re.fullmatch(r"\$\{SMSGW_METRICS_TOKEN(:-)?\}", env["SMSGW_METRICS_TOKEN"])
    assert "metrics_token" not in tomllib.loads(EXAMPLE_TOML.read_text())["gateway"]
    settings = load_settings({"SMSGW_METRICS_TOKEN": "scrape-secret"})
    assert settings.gateway.metrics_token == "scrape-secret"
    assert "scrape-secret" in config_secrets(settings)  # redacted from every log line


@pytest.mark.parametrize("name", ["gateway", "worker"])
def test_config_file_is_mounted_read_only_where_smsgw_config_points(name: str) -> None:
    host, target, mode = mounted_config(service(name))
    assert host == EXAMPLE_TOML.resolve()
    assert target.startswith("/") and mode == "ro"


def test_redis_persists_with_appendonly_everysec_on_a_named_volume() -> None:
    redis = service("redis")
    assert redis["image"].startswith("redis:7")
    args = " ".join(redis["command"])
    assert "--appendonly yes" in args and "--appendfsync everysec" in args
    named = {v.split(":")[0]: v.split(":")[1] for v in redis["volumes"]}
    assert named.get(next(iter(compose()["volumes"]))) == "/data"


def test_every_service_has_a_healthcheck() -> None:
    for name, body in compose()["services"].items():
        assert body.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "redis-cli ping" in " ".join(service("redis")["healthcheck"]["test"])


@pytest.mark.parametrize("name", ["gateway", "worker"])
def test_service_waits_for_a_healthy_redis(name: str) -> None:
    assert service(name)["depends_on"]["redis"]["condition"] == "service_healthy"


def test_simulator_starts_only_with_the_sim_profile() -> None:
    assert service("smsc-sim")["profiles"] == ["sim"]
    others = [n for n, body in compose()["services"].items() if n != "smsc-sim"]
    assert not [n for n in others if "profiles" in service(n)]


def test_smsgw_services_run_one_image_built_from_the_dockerfile() -> None:
    builds = {(service(n)["build"], service(n)["image"]) for n in SMSGW_SERVICES}
    assert len(builds) == 1
    ((context, _image),) = builds
    assert (COMPOSE.parent / context / "Dockerfile").resolve() == DOCKERFILE.resolve()


def test_worker_stop_grace_period_covers_job_wait_and_drain() -> None:
    # arq waits drain_seconds for running jobs, then on_shutdown drains submits as long again.
    drain = load_settings({"SMSGW_CONFIG": str(EXAMPLE_TOML)}).worker.drain_seconds
    assert duration_seconds(service("worker")["stop_grace_period"]) > 2 * drain


@pytest.mark.parametrize("name", ["gateway", "worker"])
@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
async def test_http_healthcheck_is_healthy_only_on_a_2xx_answer(
    name: str, status: int, healthy: bool
) -> None:
    snippet, url = probe_url(service(name))

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"status": status}, status=status)

    app = web.Application()
    app.router.add_get(urlsplit(url).path, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        local = snippet.replace(url, url.replace(f":{urlsplit(url).port}/", f":{port}/"))
        assert local != snippet
        returncode = await _run_python(local)
    finally:
        await runner.cleanup()
    assert (returncode == 0) is healthy


async def _run_python(code: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        async with asyncio.timeout(30):
            return await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- deploy/smsgw.example.toml ----------------------------------------------------------------


def test_example_config_loads_and_points_at_the_compose_simulator() -> None:
    settings = load_settings({"SMSGW_CONFIG": str(EXAMPLE_TOML)})
    sim = settings.channel("sim")
    assert sim is not None
    assert sim.host == "smsc-sim" and "smsc-sim" in compose()["services"]
    sim_args = parse_smsgw(service("smsc-sim")["command"])
    assert sim.port == sim_args.port
    assert (sim.system_id, sim.password) in sim_args.account
    assert settings.gateway.default_channel == "sim"


def test_example_config_health_port_matches_the_worker_command() -> None:
    settings = load_settings({"SMSGW_CONFIG": str(EXAMPLE_TOML)})
    assert settings.worker.health_port == parse_smsgw(service("worker")["command"]).health_port


def test_example_config_shows_every_setting() -> None:
    raw = tomllib.loads(EXAMPLE_TOML.read_text())
    expected = {
        "channels.sim": _field_names(Channel) - {"name"},
        "gateway": _field_names(GatewaySettings) - {"admin_bootstrap_key", "metrics_token"},
        "worker": _field_names(WorkerSettings),
        "webhooks": _field_names(WebhookSettings),
        "smpp_server": _field_names(SmppServerSettings),
    }
    for table, names in expected.items():
        body = raw
        for part in table.split("."):
            body = body[part]
        assert names - set(body) == set(), f"[{table}] does not show these settings"


def test_example_config_comments_every_group_of_settings() -> None:
    commented = False
    for number, line in enumerate(EXAMPLE_TOML.read_text().splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            commented = True
        elif not stripped or stripped.startswith("["):
            commented = False
        else:
            assert commented, f"line {number}: {stripped!r} has no comment above it"


def _field_names(cls: type[Any]) -> set[str]:
    """The settings of a config table (a derived field, such as a channel's built TLS context,
    is not one)."""
    return {f.name for f in dataclasses.fields(cls) if not f.metadata.get("derived")}


# --- Dockerfile and .dockerignore -------------------------------------------------------------


def test_image_is_built_on_python_311_slim() -> None:
    froms = [ins for ins in dockerfile() if ins.keyword == "FROM"]
    # Every stage on the same base: the virtualenv built in one runs in the other.
    assert {base_image(ins) for ins in froms} == {"python:3.11-slim"}


def test_image_runs_as_a_non_root_user() -> None:
    users = [ins.args for ins in final_stage(dockerfile()) if ins.keyword == "USER"]
    assert users, "the final stage never leaves root"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_image_entrypoint_is_the_smsgw_console_script() -> None:
    entrypoints = [ins for ins in final_stage(dockerfile()) if ins.keyword == "ENTRYPOINT"]
    assert entrypoints and entrypoints[-1].exec_form() == ["smsgw"]
    module, _, attribute = pyproject()["project"]["scripts"]["smsgw"].partition(":")
    assert callable(getattr(importlib.import_module(module), attribute))


def test_image_leaves_health_checks_to_compose() -> None:
    assert "HEALTHCHECK" not in {ins.keyword for ins in dockerfile()}


def test_image_installs_the_project_without_extras() -> None:
    installs = [i.args for i in dockerfile() if i.keyword == "RUN" and "pip install" in i.args]
    assert len(installs) == 1
    words = shlex.split(installs[0])
    targets = [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    assert targets == ["."], "the project itself, no [dev]/[test] extras, no editable install"


def test_image_copies_every_package_setuptools_installs() -> None:
    include = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()
                and any(fnmatch.fnmatchcase(p.name, pattern) for pattern in include)}
    assert packages, "setuptools would install nothing"
    assert packages <= set(_copied_sources())


def test_build_context_holds_every_file_the_dockerfile_copies() -> None:
    for source in _copied_sources():
        assert (ROOT / source).exists(), f"COPY {source}: no such file"
        assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"


def test_build_context_leaves_out_git_virtualenv_and_env_files() -> None:
    for path in (".git", ".venv", ".env", "tests/unit/__pycache__", "gateway/__pycache__"):
        assert dockerignored(path), f"{path} would be sent to the Docker daemon"


def _copied_sources() -> list[str]:
    sources: list[str] = []
    for ins in dockerfile():
        if ins.keyword not in ("COPY", "ADD"):
            continue
        words = ins.args.split()
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w.rstrip("/") for w in words[:-1] if not w.startswith("--")]
    return sources


# --- the webhooks service ---------------------------------------------------------------------


def test_webhooks_service_runs_the_delivery_process_with_the_shared_config() -> None:
    hooks = service("webhooks")
    assert parse_smsgw(hooks["command"]).command == "webhooks"
    env = hooks["environment"]
    assert env["REDIS_URL"] == service("worker")["environment"]["REDIS_URL"]
    assert mounted_config(hooks) == mounted_config(service("worker"))
    assert hooks["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "ports" not in hooks and "container_name" not in hooks  # scalable, like the worker


@pytest.mark.parametrize("reachable", [True, False])
async def test_webhooks_healthcheck_is_healthy_only_while_its_redis_answers(
    reachable: bool, redis_url: str
) -> None:
    test = service("webhooks")["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4, test
    url = redis_url if reachable else f"redis://127.0.0.1:{free_port()}/0"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", test[3], env={**os.environ, "REDIS_URL": url},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with asyncio.timeout(30):
            returncode = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert (returncode == 0) is reachable
