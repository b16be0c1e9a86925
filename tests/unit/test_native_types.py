"""The native types' catalogue, options and header, without a server (the tools that read
them run against a real gateway in tests/integration/test_native_types.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.app import create_app
from gateway.nativetypes import LANGUAGES, all_types, metadata, parse
from gateway.nativetypes.options import header
from gateway.operations import OPERATIONS, PREDEFINED
from worker.config import settings_from_dict

BASE = "http://gw.example:8080"


def _render(language: str) -> str:
    lang = LANGUAGES[language]
    return lang.render(all_types(), parse({}, BASE, lang.defaults))


def test_every_catalogued_route_is_one_the_gateway_serves() -> None:
    app = create_app(settings_from_dict({"channels": {"sim": {}}}, {}, source="test"))
    served = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None}
    for op in OPERATIONS:
        for route in op.routes:
            for verb in route.verbs:
                assert (verb, route.path) in served, (op.name, verb, route.path)
        for prefix in PREDEFINED:
            assert any(p == prefix + op.name for _, p in served), op.name


def test_every_operation_the_gateway_serves_is_catalogued() -> None:
    # An operation added to the router but not to the catalogue would be missing from the
    # native types and the metadata pages.
    app = create_app(settings_from_dict({"channels": {"sim": {}}}, {}, source="test"))
    served = {r.resource.canonical.removeprefix(PREDEFINED[0]) for r in app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith(PREDEFINED[0])}
    assert served == {op.name for op in OPERATIONS}


def test_the_header_comments_out_defaults_and_keeps_what_the_request_set() -> None:
    opts = parse({"includetypes": "Send*", "Unknown": "x"}, BASE, LANGUAGES["typescript"].defaults)
    text = header(opts, open_="/*", close="*/", prefix="//",
                  now=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    lines = text.splitlines()
    assert lines[:5] == ["/* Options:", "Date: 2024-01-02 03:04:05", lines[2],
                         'Tip: To override a DTO option, remove "//" prefix before updating',
                         f"BaseUrl: {BASE}"]
    assert "IncludeTypes: Send*" in lines and "//MakePropertiesOptional: False" in lines
    assert "Unknown" not in text and lines[-1] == "*/"


def test_include_types_with_dot_star_takes_the_request_its_response_and_their_types() -> None:
    opts = parse({"IncludeTypes": "GetSMPPSmsStatus.*"}, BASE, metadata.DEFAULTS)
    doc = metadata.document(all_types(), opts, "1")
    (op,) = doc["operations"]
    assert op["request"]["name"] == "GetSMPPSmsStatus" and op["returnType"]["name"] == \
        "SMPPStatusResponse" and op["requiresAnyRole"] == ["Client", "Admin", "Partner"]
    assert {t["name"] for t in doc["types"]} == {"SMPPMessageStatus", "SMPPStatusTransition",
                                                  "ResponseStatus", "ResponseError"}


def test_exclude_types_drops_types_from_every_language() -> None:
    for lang in LANGUAGES.values():
        text = lang.render(all_types(), parse({"ExcludeTypes": "GetApiKeys"}, BASE,
                                              lang.defaults))
        assert "class GetApiKeys" not in text and "class GetApiKey" in text


def test_requests_carry_their_route_verb_and_response_type() -> None:
    ts = _render("typescript")
    assert '// @Route("/admin/keys/{id}", "DELETE")\n' in ts
    assert "export class DeleteApiKey implements IReturn<ApiKeyResponse>" in ts
    assert "public getMethod() { return 'DELETE'; }" in ts
    py = _render("python")
    assert "class GetSMPPSmsStatus(IReturn[SMPPStatusResponse], IGet):" in py
    cs = _render("csharp")
    assert '[Route("/communication/message/smpp/sms", "POST")]' in cs
    assert "        : IReturn<SMPPMsgResponse>" in cs


def test_nullable_annotations_apply_to_csharp_when_asked() -> None:
    cs = LANGUAGES["csharp"]
    plain = cs.render(all_types(), parse({}, BASE, cs.defaults))
    annotated = cs.render(all_types(), parse({"AddNullableAnnotations": "True"}, BASE,
                                             cs.defaults))
    assert "public virtual string channel { get; set; }" in plain
    assert "public virtual string? channel { get; set; }" in annotated
    assert "public virtual bool accepted { get; set; }" in annotated
    assert "\nAddNullableAnnotations: True\n" in annotated


def test_the_python_types_are_valid_python() -> None:
    source = _render("python")
    compile(source, "dtos.py", "exec")
