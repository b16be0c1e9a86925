"""The options of a native types request and the comment header that records them.

ServiceStack's tools update a reference by reading this header back: the ``BaseUrl:`` line,
then every ``Name: value`` line not commented out, sent again as query options. So a header
lists each option its language honours, commented out (``//Name: default``) unless the request
set it; options a language does not honour are left out rather than claimed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata

from gateway.nativetypes.model import DtoType
from gateway.operations import BY_NAME

TIP = 'Tip: To override a DTO option, remove "{prefix}" prefix before updating'


@dataclass(frozen=True, slots=True)
class Options:
    base_url: str
    given: Mapping[str, str]  # the honoured options the request set, by canonical name
    defaults: Mapping[str, str]  # every honoured option, in header order

    def get(self, name: str) -> str:
        return self.given.get(name, self.defaults[name])

    def flag(self, name: str) -> bool:
        return self.get(name).strip().lower() in ("true", "1", "yes")

    def names(self, name: str) -> list[str]:
        return [n.strip() for n in re.split(r"[,;]", self.get(name)) if n.strip()]


def parse(query: Mapping[str, str], base_url: str, defaults: Mapping[str, str]) -> Options:
    """The options of ``query`` that ``defaults`` names (any case); the rest are ignored."""
    canonical = {name.lower(): name for name in defaults}
    given = {canonical[k.lower()]: v for k, v in query.items() if k.lower() in canonical}
    return Options(base_url=query.get("BaseUrl") or base_url, given=given, defaults=defaults)


def header(opts: Options, *, open_: str, close: str, prefix: str, now: datetime | None = None
           ) -> str:
    """The options comment that starts every native types file."""
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"{open_} Options:", f"Date: {when}", f"Version: {version()}",
             TIP.format(prefix=prefix), f"BaseUrl: {opts.base_url}", ""]
    for name, default in opts.defaults.items():
        if name in opts.given:
            lines.append(f"{name}: {opts.given[name]}")
        else:
            lines.append(f"{prefix}{name}: {default}".rstrip() + (" " if not default else ""))
    lines.append(close)
    return "\n".join(lines) + "\n"


def version() -> str:
    """smsgw's version, for the header and the metadata model."""
    try:
        return metadata.version("smsgw")
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        return "0"


def select(types: Iterable[DtoType], opts: Options) -> list[DtoType]:
    """``types`` filtered by IncludeTypes and ExcludeTypes, as ServiceStack reads them:
    ``Name`` is that type, ``Name.*`` it and every type it uses (a request also its response),
    ``Prefix*`` every type whose name starts so."""
    everything = list(types)
    by_name = {t.name: t for t in everything}
    include = opts.names("IncludeTypes") if "IncludeTypes" in opts.defaults else []
    exclude = opts.names("ExcludeTypes") if "ExcludeTypes" in opts.defaults else []
    wanted = _matching(include, by_name) if include else set(by_name)
    wanted -= _matching(exclude, by_name)
    return [t for t in everything if t.name in wanted]


def _matching(patterns: list[str], by_name: Mapping[str, DtoType]) -> set[str]:
    out: set[str] = set()
    for pattern in patterns:
        if pattern.endswith(".*"):
            out |= _closure(pattern[:-2], by_name)
        elif pattern.endswith("*"):
            out |= {n for n in by_name if n.startswith(pattern[:-1])}
        elif pattern in by_name:
            out.add(pattern)
    return out


def _closure(name: str, by_name: Mapping[str, DtoType]) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in by_name:
            continue
        seen.add(current)
        todo += by_name[current].references()
        if current in BY_NAME:
            todo.append(BY_NAME[current].response.__name__)
    return seen
