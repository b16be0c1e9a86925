"""ServiceStack wire formats: negotiation, JSON and DataContract XML, both ways. No I/O.

JSON input names match case-insensitively; output names are exactly as declared, nulls omitted.
XML follows DataContract: ordinal element order (ServiceStack's own types in declared order),
``i:nil`` for nulls, item elements named after the item type. XML input is untrusted: any DTD
or entity declaration is refused before it can cost anything.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar
from xml.parsers import expat

from pydantic import BaseModel, ValidationError

from gateway.dto import ResponseError, ResponseStatus, SMPPMsgResponse

Fmt = Literal["json", "xml"]
Model = TypeVar("Model", bound=BaseModel)

NS = "http://schemas.datacontract.org/2004/07/digitaluapi.ServiceModel"
NS_I = "http://www.w3.org/2001/XMLSchema-instance"
NS_SS = "http://schemas.servicestack.net/types"
NS_ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
JSON_TYPE = "application/json; charset=utf-8"
XML_TYPE = "application/xml"
_SS_TYPES = frozenset({"ResponseStatus", "ResponseError"})


class WireError(Exception):
    """A body that cannot be read as the expected DTO."""

    def __init__(self, message: str, field_errors: Sequence[tuple[str, str, str]] = (),
                 code: str = "SerializationException") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field_errors = list(field_errors)


# --- negotiation ---------------------------------------------------------------------------


def _suffix(path: str) -> Fmt | None:
    if path.endswith(".json") or "/json/reply/" in path:
        return "json"
    if path.endswith(".xml") or "/xml/reply/" in path:
        return "xml"
    return None


def request_format(path: str, content_type: str) -> Fmt:
    """Format of a request body: fixed by predefined routes, else by Content-Type."""
    fixed = _suffix(path)
    if fixed:
        return fixed
    if path.startswith("/api/"):
        return "json"  # JsonApiClient sends text/plain
    return "xml" if "xml" in content_type.lower() else "json"


def response_format(path: str, query: Mapping[str, str], accept: str, content_type: str) -> Fmt:
    """ServiceStack's precedence: suffix/predefined route, ?format=, Accept, Content-Type."""
    fixed = _suffix(path)
    if fixed:
        return fixed
    fmt = query.get("format", "").lower()
    if fmt in ("json", "xml"):
        return fmt  # type: ignore[return-value]
    if path.startswith("/api/"):
        return "json"
    first = accept.split(",")[0].split(";")[0].strip().lower()
    if first.endswith(("/json", "+json")):
        return "json"
    if first.endswith(("/xml", "+xml")):
        return "xml"
    if first in ("*/*", ""):
        return "xml" if "xml" in content_type.lower() else "json"
    return "json"


# --- parsing -------------------------------------------------------------------------------


def parse(model: type[Model], body: bytes, fmt: Fmt) -> Model:
    """Read ``body`` as ``model``; raises WireError."""
    data = _read_json(body) if fmt == "json" else _read_xml(model, body)
    try:
        return model.model_validate(_fold(model, data))
    except ValidationError as exc:
        errors = [(_code(e["type"]), ".".join(str(p) for p in e["loc"]), e["msg"])
                  for e in exc.errors()]
        raise WireError("the request has fields of the wrong type", errors,
                        code=errors[0][0] if errors else "SerializationException") from None


def _code(pydantic_type: str) -> str:
    return "InvalidType" if pydantic_type.endswith("_type") else "Invalid"


def _read_json(body: bytes) -> Any:
    try:
        data = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError("the body must be a JSON object")
    return data


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: f.annotation for name, f in model.model_fields.items()}


def _inner(annotation: Any) -> tuple[Any, bool]:
    """(item type, is_list) of an annotation, without its None."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


def _fold(model: type[BaseModel], data: Any) -> Any:
    """Map input names case-insensitively onto the model's declared names, recursively."""
    if not isinstance(data, dict):
        return data
    fields = _fields(model)
    by_lower = {name.lower(): name for name in fields}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = by_lower.get(str(key).lower())
        if name is None:
            continue
        item, is_list = _inner(fields[name])
        if isinstance(item, type) and issubclass(item, BaseModel):
            if is_list and isinstance(value, list):
                value = [_fold(item, v) for v in value]
            elif not is_list:
                value = _fold(item, value)
        out[name] = value
    return out


def _read_xml(model: type[BaseModel], body: bytes) -> Any:
    head = body[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in head:
        raise WireError("XML with a DTD or entity declarations is refused")
    tree = _XmlTree()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_external
    parser.StartElementHandler = tree.start
    parser.EndElementHandler = tree.end
    parser.CharacterDataHandler = tree.text
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise WireError(f"the body is not valid XML: {exc}") from None
    root = tree.root
    if root is None or root.name != f"{NS} {model.__name__}":
        raise WireError(f"the root element must be {model.__name__} in namespace {NS}")
    return _xml_value(model, root)


def _refuse(*_args: Any) -> None:
    raise WireError("XML with a DTD, entities or external references is refused")


def _refuse_external(*_args: Any) -> int:
    raise WireError("XML with external references is refused")


class _Node:
    __slots__ = ("children", "name", "nil", "text")

    def __init__(self, name: str, nil: bool) -> None:
        self.name, self.nil = name, nil
        self.children: list[_Node] = []
        self.text: list[str] = []

    @property
    def local(self) -> str:
        return self.name.rpartition(" ")[2]


class _XmlTree:
    def __init__(self) -> None:
        self.root: _Node | None = None
        self._stack: list[_Node] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        node = _Node(name, attrs.get(f"{NS_I} nil") == "true")
        if self._stack:
            self._stack[-1].children.append(node)
        else:
            self.root = node
        self._stack.append(node)

    def end(self, _name: str) -> None:
        self._stack.pop()

    def text(self, data: str) -> None:
        if self._stack:
            self._stack[-1].text.append(data)


def _xml_value(annotation: Any, node: _Node) -> Any:
    if node.nil:
        return None
    item, is_list = _inner(annotation)
    if is_list:
        return [_xml_value(item, child) for child in node.children]
    if isinstance(item, type) and issubclass(item, BaseModel):
        fields = _fields(item)
        return {c.local: _xml_value(fields[c.local], c) for c in node.children
                if c.local in fields}
    text = "".join(node.text)
    if item is bool:
        return {"true": True, "false": False}.get(text.strip(), text)
    if item is int:
        return int(text) if text.strip().lstrip("-").isdigit() else text
    return text


# --- rendering -----------------------------------------------------------------------------


def render(dto: BaseModel, fmt: Fmt) -> tuple[bytes, str]:
    """Serialise a response DTO: (body, Content-Type)."""
    if fmt == "json":
        data = dto.model_dump(exclude_none=True)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(), JSON_TYPE
    name = type(dto).__name__
    body = (f'<?xml version="1.0" encoding="utf-8"?><{name} xmlns:i="{NS_I}" xmlns="{NS}">'
            f"{_xml_members(dto, '')}</{name}>")
    return body.encode(), XML_TYPE


def _xml_members(dto: BaseModel, prefix: str) -> str:
    names = list(type(dto).model_fields)
    if type(dto).__name__ not in _SS_TYPES:
        names.sort()
    return "".join(_xml_member(f"{prefix}{n}", getattr(dto, n), prefix) for n in names)


def _xml_member(tag: str, value: Any, prefix: str) -> str:
    if value is None:
        return f'<{tag} i:nil="true" />'
    if isinstance(value, BaseModel):
        tname = type(value).__name__
        if tname in _SS_TYPES and not prefix:
            return f'<{tag} xmlns:d2p1="{NS_SS}">{_xml_members(value, "d2p1:")}</{tag}>'
        return f"<{tag}>{_xml_members(value, prefix)}</{tag}>"
    if isinstance(value, dict):
        ns = "d5p1" if prefix else "d3p1"
        items = "".join(f"<{ns}:KeyValueOfstringstring><{ns}:Key>{_esc(k)}</{ns}:Key>"
                        f"<{ns}:Value>{_esc(v)}</{ns}:Value></{ns}:KeyValueOfstringstring>"
                        for k, v in value.items())
        return f'<{tag} xmlns:{ns}="{NS_ARRAYS}">{items}</{tag}>'
    if isinstance(value, list):
        if value and not isinstance(value[0], BaseModel):
            items = "".join(f"<d4p1:string>{_esc(str(v))}</d4p1:string>" for v in value)
            return f'<{tag} xmlns:d4p1="{NS_ARRAYS}">{items}</{tag}>'
        items = "".join(f"<{prefix}{type(v).__name__}>{_xml_members(v, prefix)}"
                        f"</{prefix}{type(v).__name__}>" for v in value)
        return f"<{tag}>{items}</{tag}>"
    if isinstance(value, bool):
        return f"<{tag}>{'true' if value else 'false'}</{tag}>"
    return f"<{tag}>{_esc(str(value))}</{tag}>"


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def error_response(
    code: str, message: str, field_errors: Sequence[tuple[str, str, str]] = ()
) -> SMPPMsgResponse:
    """The response DTO with only ResponseStatus filled (whole-request errors)."""
    return SMPPMsgResponse(ResponseStatus=ResponseStatus(
        ErrorCode=code, Message=message,
        Errors=[ResponseError(ErrorCode=c, FieldName=f, Message=m) for c, f, m in field_errors],
    ))
