"""Format negotiation follows ServiceStack's precedence (CONTRACT.md)."""

from __future__ import annotations

import pytest

from gateway.wire import Fmt, format_suffix, request_format, response_format

SMS = "/communication/message/smpp/sms"


@pytest.mark.parametrize(
    ("path", "query", "accept", "content_type", "expected"),
    [
        # a path suffix beats everything on the custom route
        (SMS + ".xml", {"format": "json"}, "application/json", "application/json", "xml"),
        (SMS + ".json", {"format": "xml"}, "application/xml", "application/xml", "json"),
        (SMS + ".XML", {}, "", "", "xml"),
        # ?format= beats Accept
        (SMS, {"format": "xml"}, "application/json", "application/json", "xml"),
        (SMS, {"format": "JSON"}, "application/xml", "application/xml", "json"),
        # an unknown ?format= is ignored
        (SMS, {"format": "csv"}, "application/xml", "", "xml"),
        # the first media type in Accept, q-values ignored
        (SMS, {}, "application/xml", "application/json", "xml"),
        (SMS, {}, "text/xml", "application/json", "xml"),
        (SMS, {}, "application/json", "application/xml", "json"),
        (SMS, {}, "text/json", "application/xml", "json"),
        (SMS, {}, "text/xml;q=0.1, application/json;q=0.9", "", "xml"),
        (SMS, {}, "application/json; charset=utf-8, application/xml", "", "json"),
        # */* or no Accept: the request's Content-Type
        (SMS, {}, "*/*", "application/xml", "xml"),
        (SMS, {}, "*/*; q=0.8", "text/xml; charset=utf-8", "xml"),
        (SMS, {}, "", "application/xml", "xml"),
        (SMS, {}, "*/*", "application/json", "json"),
        (SMS, {}, "*/*", "", "json"),
        (SMS, {}, "", "text/plain", "json"),
        # a first media type that is neither format: JSON
        (SMS, {}, "text/html,application/xhtml+xml,application/xml;q=0.9", "", "json"),
        # predefined routes fix the format
        ("/json/reply/SendSMPPSmsRequest", {"format": "xml"}, "application/xml",
         "application/xml", "json"),
        ("/xml/reply/SendSMPPSmsRequest", {"format": "json"}, "application/json",
         "application/json", "xml"),
        ("/json/oneway/SendSMPPSmsRequest", {}, "application/xml", "", "json"),
        # /api answers JSON whatever Accept says, unless ?format=xml
        ("/api/SendSMPPSmsRequest", {}, "application/xml", "application/xml", "json"),
        ("/api/SendSMPPSmsRequest", {"format": "xml"}, "application/json", "", "xml"),
        # a custom path that merely contains a predefined segment is not predefined
        ("/tenant/json/reply/x", {}, "application/xml", "", "xml"),
    ],
)
def test_response_format_follows_servicestack_precedence(
    path: str, query: dict[str, str], accept: str, content_type: str, expected: Fmt
) -> None:
    assert response_format(path, query, accept, content_type) == expected


@pytest.mark.parametrize(
    ("path", "content_type", "expected"),
    [
        # JsonApiClient posts JSON as text/plain to /api
        ("/api/SendSMPPSmsRequest", "text/plain;charset=UTF-8", "json"),
        ("/api/SendSMPPSmsRequest", "application/xml", "json"),
        ("/json/reply/SendSMPPSmsRequest", "application/xml", "json"),
        ("/xml/reply/SendSMPPSmsRequest", "application/json", "xml"),
        ("/XML/Reply/SendSMPPSmsRequest", "", "xml"),
        # the custom route reads what the Content-Type says
        (SMS, "application/xml", "xml"),
        (SMS, "text/xml; charset=utf-8", "xml"),
        (SMS, "application/json", "json"),
        (SMS, "text/json", "json"),
        (SMS + ".xml", "application/json", "json"),
        # a Content-Type naming neither format: the suffix, then JSON
        (SMS + ".xml", "", "xml"),
        (SMS + ".xml", "application/x-www-form-urlencoded", "xml"),
        (SMS, "", "json"),
        (SMS, "text/plain", "json"),
    ],
)
def test_request_format_follows_route_then_content_type(
    path: str, content_type: str, expected: Fmt
) -> None:
    assert request_format(path, content_type) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [(SMS + ".json", "json"), (SMS + ".Xml", "xml"), (SMS, None), (SMS + "/01ABC", None)],
)
def test_format_suffix_is_read_case_insensitively(path: str, expected: Fmt | None) -> None:
    assert format_suffix(path) == expected
