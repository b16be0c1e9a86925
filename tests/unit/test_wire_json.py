"""ServiceStack JSON: case-insensitive names in, declared names out."""

from __future__ import annotations

import json

import pytest

from gateway import wire
from gateway.dto import (
    GetSMPPSmsStatusBatch,
    SendSMPPSmsRequest,
    SMPPMessage,
    SMPPMessageStatus,
    SMPPMsgResponse,
    SMPPResponseMsg,
    SMPPStatusResponse,
    SMPPStatusTransition,
)

CONTRACT_ERROR_SAMPLE = (
    b'{"ResponseStatus":{"ErrorCode":"NotEmpty","Message":"\'Messages\' must not be empty.",'
    b'"Errors":[{"ErrorCode":"NotEmpty","FieldName":"Messages",'
    b'"Message":"\'Messages\' must not be empty."}]}}'
)


def _wire_error(model: type[wire.Model], body: bytes) -> wire.WireError:
    with pytest.raises(wire.WireError) as caught:
        wire.parse(model, body, "json")
    return caught.value


@pytest.mark.parametrize(
    "body",
    [
        b'{"Messages":[{"channel":"c","to":"+27820000000","content":"Hi","clientMessageId":"1"}]}',
        b'{"messages":[{"Channel":"c","To":"+27820000000","Content":"Hi","ClientMessageId":"1"}]}',
        b'{"MESSAGES":[{"CHANNEL":"c","TO":"+27820000000","CONTENT":"Hi","CLIENTMESSAGEID":"1"}]}',
        b'{"mEsSaGeS":[{"cHaNnEl":"c","tO":"+27820000000","cOnTeNt":"Hi","clientmessageid":"1"}]}',
    ],
)
def test_property_names_match_case_insensitively(body: bytes) -> None:
    req = wire.parse(SendSMPPSmsRequest, body, "json")
    assert req.Messages == [
        SMPPMessage(channel="c", to="+27820000000", content="Hi", clientMessageId="1")
    ]


def test_unknown_properties_are_ignored() -> None:
    body = b'{"Extra":{"deep":[1,2]},"Messages":[{"to":"1","priority":9}],"Version":3}'
    req = wire.parse(SendSMPPSmsRequest, body, "json")
    assert req.Messages == [SMPPMessage(to="1")]


def test_nulls_parse_as_none() -> None:
    assert wire.parse(SendSMPPSmsRequest, b'{"Messages":null}', "json").Messages is None
    req = wire.parse(SendSMPPSmsRequest, b'{"Messages":[{"to":null,"content":"x"}]}', "json")
    assert req.Messages == [SMPPMessage(content="x")]


def test_a_later_spelling_of_the_same_name_wins() -> None:
    req = wire.parse(SendSMPPSmsRequest, b'{"Messages":[{"to":"1"}],"messages":[]}', "json")
    assert req.Messages == []


def test_string_arrays_parse() -> None:
    req = wire.parse(GetSMPPSmsStatusBatch, b'{"ApiMessageIds":["a","b"]}', "json")
    assert req.apiMessageIds == ["a", "b"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"Messages":[{"to":123}]}', "Messages[0].to"),
        (b'{"Messages":[{"content":"ok"},{"CONTENT":["a"]}]}', "Messages[1].content"),
        (b'{"Messages":"x"}', "Messages"),
        (b'{"Messages":{"to":"1"}}', "Messages"),
        (b'{"Messages":[5]}', "Messages[0]"),
        (b'{"Messages":[null]}', "Messages[0]"),
        (b'{"Messages":[{"to":true}]}', "Messages[0].to"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_field_error(body: bytes, field: str) -> None:
    err = _wire_error(SendSMPPSmsRequest, body)
    assert [(code, name) for code, name, _ in err.field_errors] == [("InvalidType", field)]
    assert err.code == "InvalidType"
    assert field in err.message


def test_every_wrong_field_is_reported() -> None:
    err = _wire_error(SendSMPPSmsRequest, b'{"Messages":[{"to":1,"content":2},{"channel":3}]}')
    assert [name for _, name, _ in err.field_errors] == [
        "Messages[0].to", "Messages[0].content", "Messages[1].channel",
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b" \r\n\t ",
        b'{"Messages":[{"content":"caf\xe9"}]}',  # Latin-1, not UTF-8
        b'\xff\xfe{\x00}\x00',  # UTF-16
        b"[]",
        b"null",
        b'"Messages"',
        b"42",
        b'{"Messages":[',
        b'{"Messages":[{"to":"1"}]} trailing',
        b'{"Messages":NaN}',
        b'{"Messages":[{"content":"\\ud800"}]}',  # half a surrogate pair
        b"[" * 200_000,
    ],
)
def test_unreadable_bodies_are_serialization_errors(body: bytes) -> None:
    err = _wire_error(SendSMPPSmsRequest, body)
    assert err.code == "SerializationException"
    assert err.field_errors == []


def test_a_utf8_byte_order_mark_is_tolerated() -> None:
    req = wire.parse(SendSMPPSmsRequest, b'\xef\xbb\xbf{"Messages":[]}', "json")
    assert req.Messages == []


def test_escaped_surrogate_pairs_and_raw_utf8_decode() -> None:
    body = '{"Messages":[{"content":"\\ud83d\\ude00 Привет"}]}'.encode()
    req = wire.parse(SendSMPPSmsRequest, body, "json")
    assert req.Messages is not None
    assert req.Messages[0].content == "\U0001f600 Привет"


def test_response_names_are_exactly_as_declared_and_nulls_omitted() -> None:
    msg = SMPPMessage(channel="c", to="+1", content="Hi", clientMessageId="k")
    dto = SMPPMsgResponse(messages=[SMPPResponseMsg(apiMessageId="A1", accepted=True, to="+1",
                                                    msg=msg)])
    body, _ = wire.render(dto, "json")
    assert body == (b'{"messages":[{"apiMessageId":"A1","accepted":true,"to":"+1","msg":'
                    b'{"channel":"c","to":"+1","content":"Hi","clientMessageId":"k"}}]}')


def test_defaults_are_written() -> None:
    body, _ = wire.render(SMPPResponseMsg(to="+1", error="bad number"), "json")
    assert json.loads(body) == {"accepted": False, "to": "+1", "error": "bad number"}


def test_empty_arrays_are_written() -> None:
    body, _ = wire.render(SMPPMsgResponse(messages=[]), "json")
    assert body == b'{"messages":[]}'


def test_non_ascii_is_kept_as_utf8_with_compact_separators() -> None:
    body, content_type = wire.render(SMPPResponseMsg(to="+1", error="Привет ✓ 😀"), "json")
    assert content_type == "application/json; charset=utf-8"
    assert "Привет ✓ 😀".encode() in body
    assert b"\\u" not in body
    assert b", " not in body and b": " not in body


def test_status_response_keeps_declared_camel_case() -> None:
    status = SMPPMessageStatus(
        apiMessageId="A1", status="DELIVERED", segments=2, smscMessageIds=["s1", "s2"],
        attempts=1, transitions=[SMPPStatusTransition(status="QUEUED", at="2024-01-01T00:00:00Z")],
    )
    body, _ = wire.render(SMPPStatusResponse(messages=[status]), "json")
    assert json.loads(body) == {"messages": [{
        "apiMessageId": "A1", "status": "DELIVERED", "segments": 2,
        "smscMessageIds": ["s1", "s2"], "attempts": 1,
        "transitions": [{"status": "QUEUED", "at": "2024-01-01T00:00:00Z"}],
    }]}


def test_error_response_matches_the_contract_sample_byte_for_byte() -> None:
    message = "'Messages' must not be empty."
    dto = wire.error_response("NotEmpty", message, [("NotEmpty", "Messages", message)])
    assert wire.render(dto, "json")[0] == CONTRACT_ERROR_SAMPLE


def test_error_response_always_has_errors_and_never_a_stack_trace() -> None:
    dto = wire.error_response("Unauthorized", "no API key", [])
    body, _ = wire.render(dto, "json")
    assert json.loads(body) == {
        "ResponseStatus": {"ErrorCode": "Unauthorized", "Message": "no API key", "Errors": []}
    }


def test_error_response_can_be_a_status_lookup_response() -> None:
    dto = wire.error_response("NotFound", "no such message", response_cls=SMPPStatusResponse)
    assert isinstance(dto, SMPPStatusResponse)
    assert dto.ResponseStatus is not None and dto.ResponseStatus.ErrorCode == "NotFound"


def test_a_rendered_response_parses_back_to_an_equal_dto() -> None:
    msg = SMPPMessage(channel="c", to="+1", content='q"uote\\ \u2028', clientMessageId=None)
    dto = SMPPMsgResponse(
        messages=[SMPPResponseMsg(apiMessageId="A1", accepted=True, to="+1", msg=msg),
                  SMPPResponseMsg(to="x", error="bad")],
        ResponseStatus=wire.error_response("E", "m", [("E", "f", "m")]).ResponseStatus,
    )
    assert wire.parse(SMPPMsgResponse, wire.render(dto, "json")[0], "json") == dto
