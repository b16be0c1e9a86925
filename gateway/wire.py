"""ServiceStack's wire conventions: format negotiation, request parsing, response rendering.

Pure functions over plain values (path, query, header strings, bytes): no I/O, no aiohttp.

- ``request_format`` / ``response_format``: ServiceStack's negotiation (CONTRACT.md).
- ``parse(Dto, body, fmt)``: every failure is one ``WireError``, which the error middleware
  answers with a 400 and a ResponseStatus. JSON names match case-insensitively; XML is
  DataContract (names case-sensitive, children accepted in any order) read by
  ``gateway.xmlsafe``, which refuses DTDs and entities before they cost anything.
  ``read`` + ``validate`` are its two halves, for a hot path that checks its plain values.
- ``render(dto, fmt)``: driven by the DTO's fields and its DataContract class attributes, so
  any DTO in ``gateway.dto`` renders without code here. ``render_plain`` writes the same
  bytes from plain values shaped like the DTO (JSON without building it).
- ``error_response``: the body of a whole-request error.
"""

from __future__ import annotations

import codecs
import functools
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import pydantic_core
from pydantic import BaseModel, ValidationError

from gateway import xmlsafe
from gateway.dto import (
    DC_NS,
    ErrorCarrier,
    ResponseError,
    ResponseStatus,
    SMPPMsgResponse,
)

__all__ = [
    "JSON_CONTENT_TYPE",
    "XML_CONTENT_TYPE",
    "FieldError",
    "Fmt",
    "Model",
    "WireError",
    "error_response",
    "format_suffix",
    "parse",
    "read",
    "render",
    "render_plain",
    "request_format",
    "response_format",
    "validate",
]

Fmt = Literal["json", "xml"]
Model = TypeVar("Model", bound=BaseModel)
FieldError = tuple[str, str, str]  # (ErrorCode, FieldName, Message), as in ResponseError

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
XML_CONTENT_TYPE = "application/xml"
ARRAYS_NS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"


class WireError(Exception):
    """A body that cannot be read as the expected DTO (answered with 400).

    ``code`` is "SerializationException" when the body cannot be read at all; when it was read
    but fields have the wrong type, it is the first field error's code, as ServiceStack's
    validation does.
    """

    def __init__(
        self,
        message: str,
        field_errors: Sequence[FieldError] = (),
        code: str = "SerializationException",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field_errors = list(field_errors)


# --- negotiation -----------------------------------------------------------------------------

_JSON_MEDIA = frozenset({"application/json", "text/json"})
_XML_MEDIA = frozenset({"application/xml", "text/xml"})


def _media_format(media_type: str) -> Fmt | None:
    essence = media_type.split(";", 1)[0].strip().lower()
    if essence in _JSON_MEDIA:
        return "json"
    if essence in _XML_MEDIA:
        return "xml"
    return None


def _predefined_route(path: str) -> Literal["json", "xml", "api"] | None:
    """ServiceStack's predefined routes: /json/reply/X, /xml/reply/X (and oneway), /api/X."""
    parts = path.lower().split("/", 3)
    if len(parts) == 4 and parts[2] in ("reply", "oneway"):
        if parts[1] == "json":
            return "json"
        if parts[1] == "xml":
            return "xml"
    if len(parts) >= 3 and parts[1] == "api":
        return "api"
    return None


def format_suffix(path: str) -> Fmt | None:
    """The format a ``.json`` / ``.xml`` path suffix asks for, if any."""
    lowered = path.lower()
    if lowered.endswith(".json"):
        return "json"
    if lowered.endswith(".xml"):
        return "xml"
    return None


def request_format(path: str, content_type: str) -> Fmt:
    """The format of a request body.

    /json/reply and /api read JSON (``JsonApiClient`` sends ``text/plain``), /xml/reply reads
    XML. Elsewhere the Content-Type decides; when it names neither format (absent, form, text),
    a path suffix does, and JSON otherwise.
    """
    route = _predefined_route(path)
    if route == "xml":
        return "xml"
    if route is not None:
        return "json"
    return _media_format(content_type) or format_suffix(path) or "json"


def response_format(path: str, query: Mapping[str, str], accept: str, content_type: str) -> Fmt:
    """The format of the response, first rule that applies.

    Predefined routes fix it (/api answers JSON unless ``?format=xml``). Elsewhere: a path
    suffix; ``?format=``; the first media type in Accept (q-values ignored); the request's
    Content-Type if Accept is ``*/*`` or absent; otherwise JSON.
    """
    route = _predefined_route(path)
    if route == "json" or route == "xml":
        return route
    asked = _query_format(query)
    if route == "api":
        return asked or "json"
    return format_suffix(path) or asked or _accept_format(accept, content_type)


def _query_format(query: Mapping[str, str]) -> Fmt | None:
    # ServiceStack binds query names case-insensitively: ?Format=xml counts too.
    asked = next((v for k, v in query.items() if k.lower() == "format"), "").strip().lower()
    if asked == "json":
        return "json"
    if asked == "xml":
        return "xml"
    return None


def _accept_format(accept: str, content_type: str) -> Fmt:
    first = accept.split(",", 1)[0].split(";", 1)[0].strip()
    if first in ("", "*/*"):
        return _media_format(content_type) or "json"
    return _media_format(first) or "json"


# --- what the wire needs to know about a DTO ------------------------------------------------


# The shapes a member can have. Plain strings, not an Enum: the XML writer compares kinds
# in its hot loop, and an Enum member lookup costs several times a string comparison.
_Kind = Literal[
    "scalar",  # str, int, bool: JSON value, XML element text
    "model",  # a nested DTO
    "scalar list",  # XML: wrapper + <d?p1:string> items in the Arrays namespace
    "model list",  # XML: wrapper + one element per item, named after its type
    "str map",  # dict[str, str]; XML: KeyValueOfstringstring entries
]


# XML item element names of scalar arrays, as DataContract names them.
_SCALAR_NAMES: dict[type[Any], str] = {str: "string", int: "int", bool: "boolean"}


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    kind: _Kind
    item: Any  # the scalar or DTO class; for lists, the item's
    # DataContract's EmitDefaultValue=false: a null is left out of XML rather than written
    # nil (extension members, so a response without them is what it always was)
    omit_null: bool = False


@dataclass(frozen=True, slots=True)
class _Contract:
    namespace: str
    members: tuple[_Member, ...]  # in DataContract order
    by_name: Mapping[str, _Member]
    # For JSON input: lower-cased names, and each declared name as is, so the usual input
    # finds its member without lower-casing first (always the one its folded name finds).
    by_any_name: Mapping[str, _Member]


@functools.cache  # a pure function of the class: computed once per DTO class
def _contract(cls: type[BaseModel]) -> _Contract:
    omitted: frozenset[str] = getattr(cls, "xml_omit_null", frozenset())
    members = [replace(_member(name, field.annotation), omit_null=name in omitted)
               for name, field in cls.model_fields.items()]
    if not getattr(cls, "xml_declared_order", False):
        members.sort(key=lambda m: m.name)  # ordinal: uppercase before lowercase
    folded = {m.name.lower(): m for m in members}
    return _Contract(
        namespace=getattr(cls, "xml_namespace", DC_NS),
        members=tuple(members),
        by_name={m.name: m for m in members},
        by_any_name={**folded, **{m.name: folded[m.name.lower()] for m in members}},
    )


def _member(name: str, annotation: Any) -> _Member:
    tp = _without_none(annotation)
    origin = typing.get_origin(tp)
    if origin is list:
        (item,) = typing.get_args(tp)
        if _is_dto(item):
            return _Member(name, "model list", item)
        if item in _SCALAR_NAMES:
            return _Member(name, "scalar list", item)
    elif origin is dict:
        if typing.get_args(tp) == (str, str):
            return _Member(name, "str map", str)
    elif _is_dto(tp):
        return _Member(name, "model", tp)
    elif tp in _SCALAR_NAMES:
        return _Member(name, "scalar", tp)
    raise TypeError(f"member {name!r}: no wire form for {annotation!r}")


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_dto(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


# --- parsing ---------------------------------------------------------------------------------


def parse(model_cls: type[Model], body: bytes, fmt: Fmt) -> Model:
    """Read a request body as ``model_cls``; raises WireError for anything unreadable."""
    return validate(model_cls, read(model_cls, body, fmt))


def read(model_cls: type[BaseModel], body: bytes, fmt: Fmt) -> dict[str, Any]:
    """The first half of :func:`parse`: the body as plain values under ``model_cls``'s
    declared names (nested DTOs as dicts), types not yet checked. A hot path may check the
    few shapes it expects itself and leave anything else to :func:`validate`."""
    return _read_json(model_cls, body) if fmt == "json" else _read_xml(model_cls, body)


def validate(model_cls: type[Model], data: dict[str, Any]) -> Model:
    """The second half of :func:`parse`: ``data`` from :func:`read` as ``model_cls``."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        raise _field_errors(exc) from None


def _field_errors(exc: ValidationError) -> WireError:
    errors = [
        (_error_code(e["type"]), _field_name(e["loc"]), f"'{_field_name(e['loc'])}': {e['msg']}")
        for e in exc.errors(include_url=False)
    ]
    code, _, message = errors[0]
    return WireError(message, errors, code=code)


def _error_code(pydantic_type: str) -> str:
    return "InvalidType" if pydantic_type.endswith(("_type", "_parsing")) else "InvalidValue"


def _field_name(loc: tuple[int | str, ...]) -> str:
    """ServiceStack's spelling of a location: ``Messages[0].to``."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name = f"{name}.{part}" if name else part
    return name


# A JSON escape that may decode to half a surrogate pair (which UTF-8 cannot carry).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _read_json(cls: type[BaseModel], body: bytes) -> dict[str, Any]:
    try:
        # .NET writers may prepend a BOM: body.decode("utf-8-sig"), without that codec's
        # Python-level wrapper
        text = (body[3:] if body[:3] == codecs.BOM_UTF8 else body).decode()
    except UnicodeDecodeError:
        raise WireError("the body is not UTF-8") from None
    if not text or text.isspace():
        raise WireError("the body is empty")
    try:
        data = _JSON.decode(text)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError("the body must be a JSON object")
    folded = _fold(cls, data)
    if _SURROGATE_ESCAPE.search(text):
        _require_unicode(folded)
    return folded


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Built once: json.loads with any argument builds a new decoder on every call.
_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def _require_unicode(data: dict[str, Any]) -> None:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise WireError("the body holds an unpaired UTF-16 surrogate") from None
    except RecursionError:
        raise WireError("the body is nested too deeply") from None


def _fold(cls: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    """Input names matched case-insensitively onto declared names (the last one wins)."""
    return _fold_names(_contract(cls).by_any_name, data)


def _fold_names(by_any_name: Mapping[str, _Member], data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        member = by_any_name.get(key) or by_any_name.get(key.lower())
        if member is None:
            continue  # unknown properties are ignored, as ServiceStack does
        if member.kind == "model" and isinstance(value, dict):
            value = _fold(member.item, value)
        elif member.kind == "model list" and isinstance(value, list):
            names = _contract(member.item).by_any_name  # once for the list, not per item
            value = [_fold_names(names, v) if isinstance(v, dict) else v for v in value]
        out[member.name] = value  # a wrong type is left for validation to name
    return out


def _read_xml(cls: type[BaseModel], body: bytes) -> dict[str, Any]:
    try:
        root = xmlsafe.parse(body)
    except xmlsafe.XmlError as exc:
        raise WireError(f"the body is not acceptable XML: {exc}") from None
    namespace = _contract(cls).namespace
    if root.ns != namespace or root.name != cls.__name__:
        raise WireError(f"the root element must be {cls.__name__} in namespace {namespace}, "
                        f"not {root.name} in namespace {root.ns or '(none)'}")
    if root.nil:
        raise WireError(f"the root element {cls.__name__} is nil")
    return _xml_object(cls, root, "")


def _xml_object(cls: type[BaseModel], element: xmlsafe.Element, path: str) -> dict[str, Any]:
    """Children in any order (ServiceStack would drop out-of-order ones); unknown ignored."""
    by_name = _contract(cls).by_name
    out: dict[str, Any] = {}
    for child in element.children:
        member = by_name.get(child.name)
        if member is not None:
            where = f"{path}.{member.name}" if path else member.name
            out[member.name] = None if child.nil else _xml_member(member, child, where)
    return out


def _xml_member(member: _Member, element: xmlsafe.Element, path: str) -> Any:
    if member.kind == "scalar":
        return _xml_scalar(member.item, element.text)
    if member.kind == "model":
        return _xml_object(member.item, element, path)
    if member.kind == "str map":
        return _xml_map(element, path)
    is_model = member.kind == "model list"
    expected = member.item.__name__ if is_model else _SCALAR_NAMES[member.item]
    items: list[Any] = []
    for i, item in enumerate(element.children):
        where = f"{path}[{i}]"
        if item.name != expected:
            message = f"'{where}': expected <{expected}>, got <{item.name}>"
            raise WireError(message, [("InvalidElement", where, message)], code="InvalidElement")
        if item.nil:
            items.append(None)
        elif is_model:
            items.append(_xml_object(member.item, item, where))
        else:
            items.append(_xml_scalar(member.item, item.text))
    return items


_XML_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_XML_INT = re.compile(r"[+-]?[0-9]{1,18}")


def _xml_scalar(tp: type[Any], text: str) -> Any:
    """XML text as ``tp``; text that does not convert is left for validation to reject."""
    if tp is bool:
        return _XML_BOOLEANS.get(text.strip(), text)
    if tp is int and _XML_INT.fullmatch(text.strip()):
        return int(text)
    return text


def _xml_map(element: xmlsafe.Element, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for entry in element.children:
        parts = {c.name: c for c in entry.children}
        key = parts.get("Key")
        if key is None or key.nil:
            message = f"'{path}': an entry has no Key"
            raise WireError(message, [("InvalidElement", path, message)], code="InvalidElement")
        value = parts.get("Value")
        out[key.text] = None if value is None or value.nil else value.text
    return out


# --- rendering -------------------------------------------------------------------------------


def render(dto: BaseModel, fmt: Fmt) -> tuple[bytes, str]:
    """A response DTO as (body, Content-Type) in ``fmt``."""
    if fmt == "json":
        # Declared names and order, nulls omitted, defaults and [] kept, UTF-8 unescaped.
        return dto.model_dump_json(exclude_none=True).encode("utf-8"), JSON_CONTENT_TYPE
    return _render_xml(dto), XML_CONTENT_TYPE


def render_plain(model_cls: type[BaseModel], data: dict[str, Any], fmt: Fmt) -> tuple[bytes, str]:
    """``render(model_cls.model_validate(data), fmt)`` without building the DTO for JSON.

    ``data`` must already be what that DTO would write: members in declared order, none
    None, nested DTOs as such dicts, only str, int and bool values (the caller's tests check
    that the bytes are the same).
    """
    if fmt == "json":
        # pydantic's own serialiser, so escaping and number forms are those of render().
        return pydantic_core.to_json(data), JSON_CONTENT_TYPE
    return render(model_cls.model_validate(data), fmt)


def _render_xml(dto: BaseModel) -> bytes:
    name = type(dto).__name__
    namespace = _contract(type(dto)).namespace
    head = (f'<?xml version="1.0" encoding="utf-8"?><{name} xmlns:i="{xmlsafe.XSI_NS}" '
            f'xmlns="{namespace}">')
    layout = _xml_layout(type(dto))
    # Almost no value needs escaping, and one search over all of them costs far less than one
    # per value: write them raw while collecting them, and write again escaped only if needed.
    out, raw = [head], list[str]()
    _write_xml(out, raw, dto, layout)
    if xmlsafe.needs_escaping("".join(raw)):
        out = [head]
        _write_xml(out, None, dto, layout)
    out.append(f"</{name}>")
    return "".join(out).encode("utf-8")


@dataclass(frozen=True, slots=True)
class _Slot:
    """How one member is written at its place in a document, tags precomputed.

    Prefixes and namespace declarations depend only on the path of types from the root, so
    each response class has one fixed layout, built once.
    """

    name: str
    kind: _Kind
    open: str  # "<tag>", with any namespace declaration
    close: str
    nil: str  # '<tag i:nil="true" />'
    empty: str  # an empty list or map: "<tag />"
    item_open: str = ""  # list items and map entries
    item_close: str = ""
    item_nil: str = ""
    prefix: str = ""  # str map: the prefix of Key and Value
    inner: tuple[_Slot, ...] = ()  # model, model list: the nested DTO's members


@functools.cache  # a pure function of the class: computed once per response class
def _xml_layout(cls: type[BaseModel]) -> tuple[_Slot, ...]:
    namespace = _contract(cls).namespace
    return _xml_slots(cls, "", 1, {namespace: ""})


def _xml_slots(
    cls: type[BaseModel], prefix: str, depth: int, scope: Mapping[str, str]
) -> tuple[_Slot, ...]:
    """The members of ``cls``, whose element is at ``depth``, named with ``prefix``."""
    return tuple(_xml_slot(m, prefix, depth + 1, scope) for m in _contract(cls).members)


def _xml_slot(member: _Member, prefix: str, depth: int, scope: Mapping[str, str]) -> _Slot:
    tag = prefix + member.name
    nil = "" if member.omit_null else f'<{tag} i:nil="true" />'
    if member.kind == "scalar":
        return _Slot(member.name, member.kind, f"<{tag}>", f"</{tag}>", nil, "")
    # Like DataContractSerializer, a namespace not yet in scope is declared on this element
    # with the prefix d{depth}p1: hence d2p1, d3p1 and d5p1 in the seed's sample.
    is_dto = member.kind in ("model", "model list")
    namespace = _contract(member.item).namespace if is_dto else ARRAYS_NS
    declare = ""
    inner_prefix = scope.get(namespace)
    if inner_prefix is None:
        inner_prefix = f"d{depth}p1:"
        declare = f' xmlns:d{depth}p1="{namespace}"'
        scope = {**scope, namespace: inner_prefix}
    slot = functools.partial(
        _Slot, member.name, member.kind, f"<{tag}{declare}>", f"</{tag}>", nil,
        f"<{tag}{declare} />", prefix=inner_prefix,
    )
    if member.kind == "model":
        return slot(inner=_xml_slots(member.item, inner_prefix, depth, scope))
    if member.kind == "str map":
        item = f"{inner_prefix}KeyValueOfstringstring"
    elif member.kind == "scalar list":
        item = inner_prefix + _SCALAR_NAMES[member.item]
    else:
        item = inner_prefix + member.item.__name__
    inner = _xml_slots(member.item, inner_prefix, depth + 1, scope) if is_dto else ()
    return slot(item_open=f"<{item}>", item_close=f"</{item}>",
                item_nil=f'<{item} i:nil="true" />', inner=inner)


def _write_xml(
    out: list[str], raw: list[str] | None, dto: BaseModel, slots: tuple[_Slot, ...]
) -> None:
    """Write ``dto``'s members; text goes out as is and into ``raw``, or escaped if no ``raw``.

    The hot loop of a large response, hence the inlined cases.
    """
    append = out.append
    for slot in slots:
        value = getattr(dto, slot.name)
        if value is None:
            append(slot.nil)
        elif slot.kind == "scalar":
            if type(value) is not str:
                value = _xml_text(value)
            elif raw is None:
                value = xmlsafe.text(value)
            else:
                raw.append(value)
            append(f"{slot.open}{value}{slot.close}")
        elif slot.kind == "model":
            append(slot.open)
            _write_xml(out, raw, value, slot.inner)
            append(slot.close)
        elif not value:
            append(slot.empty)
        else:
            append(slot.open)
            _write_xml_items(out, raw, slot, value)
            append(slot.close)


def _write_xml_items(out: list[str], raw: list[str] | None, slot: _Slot, value: Any) -> None:
    if slot.kind == "model list":
        for item in value:
            if item is None:
                out.append(slot.item_nil)
            else:
                out.append(slot.item_open)
                _write_xml(out, raw, item, slot.inner)
                out.append(slot.item_close)
    elif slot.kind == "scalar list":  # short lists: always escaped, never in ``raw``
        out.extend(f"{slot.item_open}{_xml_text(v)}{slot.item_close}" for v in value)
    else:
        k, v = slot.prefix + "Key", slot.prefix + "Value"
        for key, text in value.items():
            shown = f'<{v} i:nil="true" />' if text is None else f"<{v}>{_xml_text(text)}</{v}>"
            out.append(f"{slot.item_open}<{k}>{_xml_text(key)}</{k}>{shown}{slot.item_close}")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    return xmlsafe.text(value if isinstance(value, str) else str(value))


# --- errors ----------------------------------------------------------------------------------


def error_response(
    error_code: str,
    message: str,
    field_errors: Iterable[FieldError] = (),
    response_cls: type[ErrorCarrier] = SMPPMsgResponse,
) -> ErrorCarrier:
    """The response DTO with only ResponseStatus filled: the body of a whole-request error.

    ``Errors`` is always present (possibly empty); StackTrace is never sent.
    """
    status = ResponseStatus(
        ErrorCode=error_code,
        Message=message,
        Errors=[ResponseError(ErrorCode=c, FieldName=f, Message=m) for c, f, m in field_errors],
    )
    return response_cls(ResponseStatus=status)
