"""DataContract XML: the seed's samples both ways, any element order in, hostile XML refused."""

from __future__ import annotations

import re
import sys
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from gateway import wire, xmlsafe
from gateway.dto import (
    GetSMPPSmsStatusBatch,
    ResponseError,
    ResponseStatus,
    SendSMPPSmsRequest,
    SMPPMessage,
    SMPPMessageStatus,
    SMPPMsgResponse,
    SMPPResponseMsg,
    SMPPStatusResponse,
    SMPPStatusTransition,
)

DC = "http://schemas.datacontract.org/2004/07/digitaluapi.ServiceModel"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"

# Copied from the seed (seed/000_faa6386fa5fe0b9d.txt), as the metadata page shows them.
SEED_REQUEST = b"""<SendSMPPSmsRequest xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.datacontract.org/2004/07/digitaluapi.ServiceModel">
<Messages>
<SMPPMessage>
<channel>String</channel>
<clientMessageId>String</clientMessageId>
<content>String</content>
<to>String</to>
</SMPPMessage>
</Messages>
</SendSMPPSmsRequest>"""

SEED_RESPONSE = """<SMPPMsgResponse xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns="http://schemas.datacontract.org/2004/07/digitaluapi.ServiceModel">
<ResponseStatus xmlns:d2p1="http://schemas.servicestack.net/types">
<d2p1:ErrorCode>String</d2p1:ErrorCode>
<d2p1:Message>String</d2p1:Message>
<d2p1:StackTrace>String</d2p1:StackTrace>
<d2p1:Errors>
<d2p1:ResponseError>
<d2p1:ErrorCode>String</d2p1:ErrorCode>
<d2p1:FieldName>String</d2p1:FieldName>
<d2p1:Message>String</d2p1:Message>
<d2p1:Meta xmlns:d5p1="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
<d5p1:KeyValueOfstringstring>
<d5p1:Key>String</d5p1:Key>
<d5p1:Value>String</d5p1:Value>
</d5p1:KeyValueOfstringstring>
</d2p1:Meta>
</d2p1:ResponseError>
</d2p1:Errors>
<d2p1:Meta xmlns:d3p1="http://schemas.microsoft.com/2003/10/Serialization/Arrays">
<d3p1:KeyValueOfstringstring>
<d3p1:Key>String</d3p1:Key>
<d3p1:Value>String</d3p1:Value>
</d3p1:KeyValueOfstringstring>
</d2p1:Meta>
</ResponseStatus>
<error>String</error>
<messages>
<SMPPResponseMsg>
<accepted>false</accepted>
<apiMessageId>String</apiMessageId>
<error>String</error>
<msg>
<channel>String</channel>
<clientMessageId>String</clientMessageId>
<content>String</content>
<to>String</to>
</msg>
<to>String</to>
</SMPPResponseMsg>
</messages>
</SMPPMsgResponse>"""

DECLARATION = b'<?xml version="1.0" encoding="utf-8"?>'


def _seed_shaped_response() -> SMPPMsgResponse:
    s, meta = "String", {"String": "String"}
    msg = SMPPMessage(channel=s, clientMessageId=s, content=s, to=s)
    return SMPPMsgResponse(
        ResponseStatus=ResponseStatus(
            ErrorCode=s, Message=s, StackTrace=s, Meta=meta,
            Errors=[ResponseError(ErrorCode=s, FieldName=s, Message=s, Meta=meta)],
        ),
        error=s,
        messages=[SMPPResponseMsg(accepted=False, apiMessageId=s, error=s, msg=msg, to=s)],
    )


def _render(dto: Any) -> bytes:
    body, content_type = wire.render(dto, "xml")
    assert content_type == "application/xml"
    return body


def _structure(element: ET.Element) -> tuple[Any, ...]:
    """Qualified tag, attributes, stripped text and children, recursively: order-sensitive."""
    return (element.tag, sorted(element.attrib.items()), (element.text or "").strip(),
            [_structure(child) for child in element])


def _wire_error(model: type[wire.Model], body: bytes) -> wire.WireError:
    with pytest.raises(wire.WireError) as caught:
        wire.parse(model, body, "xml")
    return caught.value


def _request(inner: str, root: str = "SendSMPPSmsRequest") -> bytes:
    return (f'<{root} xmlns:i="{XSI}" xmlns="{DC}">{inner}</{root}>').encode()


# --- the seed's samples ---------------------------------------------------------------------


def test_the_seed_request_sample_parses() -> None:
    req = wire.parse(SendSMPPSmsRequest, SEED_REQUEST, "xml")
    assert req == SendSMPPSmsRequest(Messages=[
        SMPPMessage(channel="String", clientMessageId="String", content="String", to="String")
    ])


def test_a_response_has_the_element_structure_of_the_seed_sample() -> None:
    ours = ET.fromstring(_render(_seed_shaped_response()))
    assert _structure(ours) == _structure(ET.fromstring(SEED_RESPONSE))


def test_a_response_matches_the_seed_sample_byte_for_byte_apart_from_layout() -> None:
    # The sample is indented for display; DataContractSerializer writes no whitespace.
    sample = re.sub(r">\s+<", "><", SEED_RESPONSE).encode()
    assert _render(_seed_shaped_response()) == DECLARATION + sample


def test_output_starts_with_the_declaration_and_has_no_bom() -> None:
    body = _render(SMPPMsgResponse())
    assert body.startswith(DECLARATION + b"<SMPPMsgResponse ")


def test_nulls_are_written_as_nil_elements() -> None:
    body = _render(SMPPMsgResponse(messages=[SMPPResponseMsg(to="+1")]))
    assert b'<ResponseStatus i:nil="true" /><error i:nil="true" /><messages>' in body
    assert b'<apiMessageId i:nil="true" />' in body and b'<msg i:nil="true" />' in body
    nils = ET.fromstring(body).findall(f".//*[@{{{XSI}}}nil='true']")
    assert [e.tag for e in nils] == [f"{{{DC}}}{n}" for n in
                                     ("ResponseStatus", "error", "apiMessageId", "error", "msg")]


def test_error_response_xml_uses_the_servicestack_namespace_and_nil_conventions() -> None:
    msg = "'Messages' must not be empty."
    body = _render(wire.error_response("NotEmpty", msg, [("NotEmpty", "Messages", msg)]))
    assert body == DECLARATION + (
        f'<SMPPMsgResponse xmlns:i="{XSI}" xmlns="{DC}">'
        '<ResponseStatus xmlns:d2p1="http://schemas.servicestack.net/types">'
        "<d2p1:ErrorCode>NotEmpty</d2p1:ErrorCode><d2p1:Message>'Messages' must not be empty."
        '</d2p1:Message><d2p1:StackTrace i:nil="true" /><d2p1:Errors><d2p1:ResponseError>'
        "<d2p1:ErrorCode>NotEmpty</d2p1:ErrorCode><d2p1:FieldName>Messages</d2p1:FieldName>"
        "<d2p1:Message>'Messages' must not be empty.</d2p1:Message>"
        '<d2p1:Meta i:nil="true" /></d2p1:ResponseError></d2p1:Errors>'
        '<d2p1:Meta i:nil="true" /></ResponseStatus><error i:nil="true" />'
        '<messages i:nil="true" /></SMPPMsgResponse>'
    ).encode()


def test_status_response_renders_with_the_same_conventions() -> None:
    status = SMPPMessageStatus(
        apiMessageId="A1", attempts=2, segments=1, smscMessageIds=["s1"],
        transitions=[SMPPStatusTransition(status="QUEUED", at="2024-01-01T00:00:00.000+00:00")],
    )
    root = ET.fromstring(_render(SMPPStatusResponse(messages=[status])))
    assert root.tag == f"{{{DC}}}SMPPStatusResponse"
    item = root.find(f"{{{DC}}}messages/{{{DC}}}SMPPMessageStatus")
    assert item is not None
    names = [child.tag.split("}")[1] for child in item]
    # every member, nil when null, but the extensions left out when null
    assert names == sorted(set(SMPPMessageStatus.model_fields) - SMPPMessageStatus.xml_omit_null)
    ids = item.find(f"{{{DC}}}smscMessageIds")
    assert ids is not None and [(e.tag, e.text) for e in ids] == [(f"{{{ARRAYS}}}string", "s1")]
    assert b'<smscMessageIds xmlns:d4p1="' + ARRAYS.encode() + b'"><d4p1:string>s1<' in (
        _render(SMPPStatusResponse(messages=[status])))
    assert item.findtext(f"{{{DC}}}attempts") == "2"


def test_empty_arrays_are_empty_elements() -> None:
    body = _render(SMPPMsgResponse(messages=[]))
    assert b"<messages />" in body


def test_text_is_escaped_and_survives_a_round_trip() -> None:
    tricky = 'a < b && c > "d" \'e\' ]]> line1\r\nline2 Привет 😀'
    dto = SMPPMsgResponse(error=tricky)
    body = _render(dto)
    assert b"&lt;" in body and b"&amp;&amp;" in body and b"&#xD;" in body
    assert ET.fromstring(body).findtext(f"{{{DC}}}error") == tricky
    assert wire.parse(SMPPMsgResponse, body, "xml") == dto


def test_characters_xml_cannot_carry_are_replaced_so_the_output_parses() -> None:
    body = _render(SMPPMsgResponse(error="bell\x07 nul\x00 half\ud800 end"))
    assert ET.fromstring(body).findtext(f"{{{DC}}}error") == "bell\ufffd nul\ufffd half\ufffd end"


def test_one_value_needing_escapes_among_many_is_escaped() -> None:
    plain = [SMPPResponseMsg(apiMessageId=f"A{i}", to="+1", accepted=True) for i in range(50)]
    dto = SMPPMsgResponse(messages=[*plain, SMPPResponseMsg(to="+2", error="Tom & <Jerry>")])
    body = _render(dto)
    assert b"Tom &amp; &lt;Jerry&gt;" in body
    assert wire.parse(SMPPMsgResponse, body, "xml") == dto


@pytest.mark.parametrize(
    "chars",
    [
        [chr(c) for c in range(0x3000)],
        ["\ud7ff", "\ud800", "\udfff", "\ue000", "\ufffd", "\ufffe", "\uffff",
         "\U00010000", "\U0010ffff"],
    ],
)
def test_the_escaping_fast_check_agrees_with_escaping(chars: list[str]) -> None:
    for ch in chars:
        for value in (ch, f"plain {ch} text", f"\u00e9{ch}"):
            assert xmlsafe.needs_escaping(value) == (xmlsafe.text(value) != value), repr(value)


def test_any_response_dto_round_trips_through_xml() -> None:
    dto = _seed_shaped_response()
    assert wire.parse(SMPPMsgResponse, _render(dto), "xml") == dto
    status = SMPPStatusResponse(messages=[SMPPMessageStatus(
        apiMessageId="A", segments=3, attempts=1, smscMessageIds=["x", "y"],
        transitions=[SMPPStatusTransition(status="S", at="t", detail="d")])])
    assert wire.parse(SMPPStatusResponse, _render(status), "xml") == status


# --- reading requests -----------------------------------------------------------------------


def test_children_are_accepted_in_any_order() -> None:
    body = _request(
        "<Unknown>ignored</Unknown><Messages><SMPPMessage><to>+1</to><content>Hi</content>"
        "<clientMessageId>k</clientMessageId><channel>c</channel></SMPPMessage></Messages>"
    )
    req = wire.parse(SendSMPPSmsRequest, body, "xml")
    assert req.Messages == [SMPPMessage(channel="c", to="+1", content="Hi", clientMessageId="k")]


def test_the_schedule_extension_members_are_read_in_any_order() -> None:
    body = _request(
        "<Messages><SMPPMessage><validUntil>2026-01-02T00:00:00Z</validUntil><to>+1</to>"
        "<scheduledAt>2026-01-01T00:00:00Z</scheduledAt></SMPPMessage></Messages>")
    assert wire.parse(SendSMPPSmsRequest, body, "xml").Messages == [SMPPMessage(
        to="+1", scheduledAt="2026-01-01T00:00:00Z", validUntil="2026-01-02T00:00:00Z")]


def test_the_schedule_extension_members_are_written_only_when_set() -> None:
    # [DataMember(EmitDefaultValue=false)]: a response without them is what it always was.
    plain = _render(SMPPResponseMsg(msg=SMPPMessage(to="+1")))
    assert b"scheduledAt" not in plain and b"validUntil" not in plain
    assert b"<channel i:nil=\"true\" />" in plain  # the contract's own members stay nil
    timed = _render(SMPPResponseMsg(msg=SMPPMessage(to="+1", validUntil="2026-01-02T00:00:00Z")))
    assert b"<to>+1</to><validUntil>2026-01-02T00:00:00Z</validUntil>" in timed


def test_element_names_are_case_sensitive() -> None:
    body = _request("<Messages><SMPPMessage><Channel>c</Channel><to>+1</to></SMPPMessage>"
                    "</Messages>")
    assert wire.parse(SendSMPPSmsRequest, body, "xml").Messages == [SMPPMessage(to="+1")]
    assert wire.parse(SendSMPPSmsRequest, _request("<messages />"), "xml").Messages is None


def test_nil_elements_parse_as_none_and_empty_ones_as_empty() -> None:
    body = _request('<Messages><SMPPMessage><to i:nil="true" /><content /></SMPPMessage>'
                    "</Messages>")
    assert wire.parse(SendSMPPSmsRequest, body, "xml").Messages == [SMPPMessage(content="")]
    nil = _request('<Messages i:nil="true" />')
    assert wire.parse(SendSMPPSmsRequest, nil, "xml").Messages is None


def test_string_arrays_parse() -> None:
    body = _request(f'<apiMessageIds xmlns:d2p1="{ARRAYS}"><d2p1:string>a</d2p1:string>'
                    "<d2p1:string>b</d2p1:string></apiMessageIds>", "GetSMPPSmsStatusBatch")
    assert wire.parse(GetSMPPSmsStatusBatch, body, "xml").apiMessageIds == ["a", "b"]


def test_an_array_item_named_after_another_type_is_a_field_error() -> None:
    body = _request("<Messages><SMPPMessage><to>1</to></SMPPMessage><Message><to>2</to>"
                    "</Message></Messages>")
    err = _wire_error(SendSMPPSmsRequest, body)
    assert [(c, f) for c, f, _ in err.field_errors] == [("InvalidElement", "Messages[1]")]


def test_text_that_is_not_of_the_member_type_is_a_field_error() -> None:
    body = _request("<attempts>many</attempts><segments>2</segments>", "SMPPMessageStatus")
    err = _wire_error(SMPPMessageStatus, body)
    assert [(c, f) for c, f, _ in err.field_errors] == [("InvalidType", "attempts")]


@pytest.mark.parametrize(
    "body",
    [
        _request("<Messages />", root="SMPPMsgResponse"),
        _request("<Messages />", root="sendSMPPSmsRequest"),
        b"<SendSMPPSmsRequest><Messages /></SendSMPPSmsRequest>",
        b'<SendSMPPSmsRequest xmlns="http://schemas.datacontract.org/2004/07/Other">'
        b"</SendSMPPSmsRequest>",
        f'<x:SendSMPPSmsRequest xmlns:x="{ARRAYS}"></x:SendSMPPSmsRequest>'.encode(),
    ],
)
def test_a_wrong_root_element_or_namespace_is_rejected(body: bytes) -> None:
    err = _wire_error(SendSMPPSmsRequest, body)
    assert err.code == "SerializationException"
    assert "root element" in err.message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<SendSMPPSmsRequest>",
        _request("<Messages><SMPPMessage></Messages>"),
        _request('<to>&unknown;</to>'),
        _request('<p:to>x</p:to>'),  # unbound prefix
        _request('<Messages i:nil="true" />', root="SendSMPPSmsRequest") + b"<second />",
        _request("<a>" * 10_000 + "</a>" * 10_000),
    ],
)
def test_malformed_xml_is_a_serialization_error(body: bytes) -> None:
    assert _wire_error(SendSMPPSmsRequest, body).code == "SerializationException"


def test_predefined_entities_and_character_references_are_decoded() -> None:
    body = _request("<Messages><SMPPMessage><content>&lt;&amp;&gt;&quot;&apos;&#65;&#x42;"
                    "</content></SMPPMessage></Messages>")
    assert wire.parse(SendSMPPSmsRequest, body, "xml").Messages == [
        SMPPMessage(content="<&>\"'AB")
    ]


# --- hostile XML ----------------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
              for i in range(1, 10))
    + f']>\n<SendSMPPSmsRequest xmlns="{DC}"><Messages><SMPPMessage><content>&lol9;'
    "</content></SMPPMessage></Messages></SendSMPPSmsRequest>"
)


@pytest.mark.parametrize(
    "body",
    [
        # a DTD of any kind, even an empty one
        f'<!DOCTYPE SendSMPPSmsRequest><SendSMPPSmsRequest xmlns="{DC}"/>'.encode(),
        # XXE
        (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
         f'<SendSMPPSmsRequest xmlns="{DC}"><Messages><SMPPMessage><content>&x;</content>'
         "</SMPPMessage></Messages></SendSMPPSmsRequest>").encode(),
        # an external DTD
        (f'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd"><SendSMPPSmsRequest xmlns="{DC}"/>'
         ).encode(),
        # parameter entities
        (f'<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>'
         f'<SendSMPPSmsRequest xmlns="{DC}"/>').encode(),
        # billion laughs, in UTF-8 and UTF-16 (a byte scan for "<!DOCTYPE" would miss the latter)
        BILLION_LAUGHS.encode(),
        BILLION_LAUGHS.replace('version="1.0"', 'version="1.0" encoding="utf-16"')
        .encode("utf-16"),
    ],
)
def test_dtds_and_entity_declarations_are_refused(body: bytes) -> None:
    err = _wire_error(SendSMPPSmsRequest, body)
    assert err.code == "SerializationException"
    assert "not allowed" in err.message


def _count_calls(action: Callable[[], object]) -> int:
    """How many Python and C function calls ``action`` makes: a measure of work done."""
    calls = 0

    def profile(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        action()
    except wire.WireError:
        pass
    finally:
        sys.setprofile(None)
    return calls


def test_billion_laughs_is_refused_before_any_expansion() -> None:
    # Expanding &lol9; would mean 10**9 characters and ~10**5+ text callbacks at the least.
    body = BILLION_LAUGHS.encode()
    calls = _count_calls(lambda: wire.parse(SendSMPPSmsRequest, body, "xml"))
    baseline = _count_calls(lambda: wire.parse(SendSMPPSmsRequest, SEED_REQUEST, "xml"))
    assert calls < baseline, (calls, baseline)
    tracemalloc.start()
    try:
        with pytest.raises(wire.WireError):
            wire.parse(SendSMPPSmsRequest, body, "xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024


def test_a_messages_sender_is_written_only_when_it_has_one() -> None:
    without = _render(SMPPResponseMsg(msg=SMPPMessage(to="1", content="Hi")))
    assert b"sender" not in without  # the contract's output, unchanged
    given = _render(SMPPResponseMsg(msg=SMPPMessage(to="1", content="Hi", sender="Acme")))
    assert b"<content>Hi</content><sender>Acme</sender><to>1</to>" in given
    parsed = wire.parse(SendSMPPSmsRequest, _request(
        "<Messages><SMPPMessage><sender>Acme</sender><to>1</to><content>Hi</content>"
        "</SMPPMessage></Messages>"), "xml")
    assert parsed.Messages == [SMPPMessage(to="1", content="Hi", sender="Acme")]
