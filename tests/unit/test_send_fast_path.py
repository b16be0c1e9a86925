"""The send operation's fast paths give what the general (pydantic) paths give.

Reading: ``read_messages`` against ``wire.parse``, on generated JSON and XML bodies (odd
casing, duplicates, nulls, wrong types). Answering: ``answers`` + ``wire.render_plain``
against SMPPResponseMsg DTOs built member by member and ``wire.render``, byte for byte.
Validation: one ``Validator`` for a whole request against a fresh one per message.
"""

from __future__ import annotations

import json
import random
from typing import Any
from xml.sax.saxutils import escape

import pytest

from gateway import wire
from gateway.dto import DC_NS, SendSMPPSmsRequest, SMPPMessage, SMPPMsgResponse, SMPPResponseMsg
from gateway.validate import Invalid, Rules, Valid, Validator
from gateway.views.send import CONFLICT, answers, read_messages
from worker.ids import new_ids
from worker.senders import Senders
from worker.store import AcceptResult

FIELDS = ("channel", "to", "content", "clientMessageId", "sender", "scheduledAt", "validUntil")
CHECKED = FIELDS[:5]  # what Validator.check reads (the send view reads the timing)
XSI = "http://www.w3.org/2001/XMLSchema-instance"
RULES = Rules(default_channel="sim", default_country_code="27", max_segments=3,
              channels={"sim": "udh8", "other": "udh16", "closed": "sar"})
ALLOWED = frozenset({"sim", "other"})
SENDERS = Senders.of(["Acme", "4470*"])
# Text that exercises escaping in both formats: quotes, backslash, markup, controls, line
# and paragraph separators, GSM extension characters, non-BMP.
ODD = ['"', "\\", "/", "<", ">", "&", "'", "]]>", "\n", "\r", "\t", "\x00", "\x1f", "\x7f",
       "\u2028", "\u2029", "é", "€", "[", "~", "😀", "\ufffd", "ß"]
NUMBERS = ["+27820000001", "+27820000002", "0820000003", "0027 82 000 0004", "(082) 000-0005",
           "+1", "abc", "", "  ", "+27820000001,0820000006", "0820000007; +27820000008;",
           ",", "+2782\uff10000009", "+123456789012345678"]


def _text(rng: random.Random, xml: bool = False) -> str:
    pieces = ["Hi", "hello there", "x" * rng.choice([1, 80, 170, 400]), "Привет"]
    pieces += [c for c in ODD if not xml or c.isprintable() or c in "\n\t"]
    return "".join(rng.choice(pieces) for _ in range(rng.randint(0, 4)))


def _casing(rng: random.Random, name: str) -> str:
    return rng.choice([name, name.lower(), name.upper(), "".join(
        c.upper() if rng.random() < 0.5 else c.lower() for c in name)])


def _value(rng: random.Random, name: str) -> Any:
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.12:
        return rng.choice([1, 2.5, True, [], {}, ["x"], {"a": "b"}])
    if name == "to":
        return rng.choice(NUMBERS)
    if name == "channel":
        return rng.choice(["sim", "other", "closed", "nope", " sim ", "", "SIM"])
    if name == "clientMessageId":
        return rng.choice(["", "a", "id-1", "id-2", "x" * 65, _text(rng)])
    if name == "sender":  # mostly none, else allowed, not allowed or not a sender
        return rng.choice(["", "", "", "", "Acme", "+447012345678", "Other", "bad,one"])
    if name in ("scheduledAt", "validUntil"):
        return rng.choice(["2026-01-31T10:00:00Z", "2099-01-01T00:00:00+02:00",
                           "2026-01-31T10:00:00", "soon", "", _text(rng)])
    return _text(rng)


def _json_object(pairs: list[tuple[str, Any]]) -> str:
    # Built by hand so that a name may appear twice (the last one wins).
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"


def _json_message(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return json.dumps(rng.choice([None, "m", 3, [], True]))
    names = [n for n in FIELDS if rng.random() < 0.85]
    names += rng.sample(FIELDS, rng.randint(0, 1)) + (["priority"] if rng.random() < 0.2 else [])
    rng.shuffle(names)
    pairs = [(_casing(rng, n), json.dumps(_value(rng, n), ensure_ascii=rng.random() < 0.5))
             for n in names]
    return _json_object(pairs)


def _json_body(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.05:
        messages = json.dumps(rng.choice([None, "x", {}, 1]))
    else:
        messages = "[" + ",".join(_json_message(rng) for _ in range(rng.randint(0, 6))) + "]"
    pairs = [(_casing(rng, "Messages"), messages)]
    if rng.random() < 0.2:
        pairs.insert(rng.randint(0, 1), ("Version", "3"))
    if rng.random() < 0.05:
        pairs.insert(0, ("messages", "null"))  # a duplicate: the later one wins
    return _json_object(pairs).encode()


def _xml_message(rng: random.Random) -> str:
    tag = "SMPPMessage" if rng.random() < 0.95 else rng.choice(["smppMessage", "Message"])
    if rng.random() < 0.05:
        return f'<{tag} i:nil="true" />'
    children = []
    for name in rng.sample(FIELDS, rng.randint(0, 4)):
        element = name if rng.random() < 0.85 else _casing(rng, name)  # names are exact
        value = _value(rng, name)
        if value is None:
            children.append(f'<{element} i:nil="true" />')
        else:
            text = _text(rng, xml=True) if not isinstance(value, str) else value
            text = "".join(c for c in text if c.isprintable() or c in "\n\t")
            children.append(f"<{element}>{escape(text)}</{element}>")
    return f"<{tag}>{''.join(children)}</{tag}>"


def _xml_body(rng: random.Random) -> bytes:
    r = rng.random()
    if r < 0.05:
        inner = '<Messages i:nil="true" />'
    elif r < 0.08:
        inner = ""
    else:
        inner = ("<Messages>" + "".join(_xml_message(rng) for _ in range(rng.randint(0, 6)))
                 + "</Messages>")
    if rng.random() < 0.1:
        inner = "<Unknown>x</Unknown>" + inner
    return (f'<SendSMPPSmsRequest xmlns:i="{XSI}" xmlns="{DC_NS}">{inner}'
            "</SendSMPPSmsRequest>").encode()


def _outcome(read: Any) -> tuple[Any, ...]:
    try:
        return ("read", read())
    except wire.WireError as exc:
        return ("refused", exc.message, exc.code, exc.field_errors)


def _general_read(body: bytes, fmt: wire.Fmt) -> list[dict[str, Any]]:
    request = wire.parse(SendSMPPSmsRequest, body, fmt)
    return [m.model_dump() for m in request.Messages or []]


def _fast_read(body: bytes, fmt: wire.Fmt) -> list[dict[str, Any]]:
    return [{name: m.get(name) for name in FIELDS} for m in read_messages(body, fmt)]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_read_messages_reads_or_refuses_generated_bodies_as_wire_parse_does(fmt: wire.Fmt) -> None:
    rng = random.Random(f"read {fmt}")
    outcomes = {"read": 0, "refused": 0}
    for _ in range(3000):
        body = _json_body(rng) if fmt == "json" else _xml_body(rng)
        fast = _outcome(lambda: _fast_read(body, fmt))  # noqa: B023 - called at once
        general = _outcome(lambda: _general_read(body, fmt))  # noqa: B023 - called at once
        assert fast == general, body
        outcomes[fast[0]] += 1
    assert min(outcomes.values()) > 100, outcomes  # both kinds were generated in number


def _message_dto(m: dict[str, Any]) -> SMPPMessage:
    return SMPPMessage(**{name: m.get(name) for name in FIELDS})


def _general_answers(
    messages: list[dict[str, Any]], checked: list[Valid | Invalid], stored: list[AcceptResult]
) -> SMPPMsgResponse:
    """The answers built as DTOs, member by member."""
    results = iter(stored)
    out: list[SMPPResponseMsg] = []
    for plain, c in zip(messages, checked, strict=True):
        m = _message_dto(plain)
        if isinstance(c, Invalid):
            out.append(SMPPResponseMsg(accepted=False, to=m.to, error=str(c), msg=m))
            continue
        for to in c.recipients:
            r = next(results)
            sent = SMPPMessage(channel=c.channel, to=to, content=m.content,
                               clientMessageId=m.clientMessageId, sender=c.sender or None,
                               scheduledAt=m.scheduledAt, validUntil=m.validUntil)
            if r.conflict:
                out.append(SMPPResponseMsg(accepted=False, to=to, msg=sent, error=CONFLICT))
            else:
                out.append(SMPPResponseMsg(apiMessageId=r.api_id, accepted=True, to=to,
                                           msg=sent))
    return SMPPMsgResponse(messages=out)


def _check(validator: Validator, m: dict[str, Any]) -> Valid | Invalid:
    try:
        return validator.check(*(m.get(name) for name in CHECKED))
    except Invalid as exc:
        return exc


def _plain_message(rng: random.Random) -> dict[str, Any]:
    m = {}
    names = rng.sample(CHECKED, rng.randint(1, len(CHECKED))) + [
        n for n in FIELDS[len(CHECKED):] if rng.random() < 0.1]
    for name in names:
        value = _value(rng, name)
        m[name] = value if value is None or isinstance(value, str) else _text(rng)
    return m


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_plain_answers_render_byte_for_byte_as_the_response_dtos(fmt: wire.Fmt) -> None:
    rng = random.Random(f"answers {fmt}")
    kinds = {"accepted": 0, "conflict": 0, "invalid": 0}
    for _ in range(1500):
        messages = [_plain_message(rng) for _ in range(rng.randint(1, 6))]
        validator = Validator(RULES, rng.choice([ALLOWED, None]), senders=SENDERS)
        checked = [_check(validator, m) for m in messages]
        total = sum(len(c.recipients) for c in checked if isinstance(c, Valid))
        stored = [AcceptResult(api_id=i, duplicate=rng.random() < 0.2,
                               conflict=rng.random() < 0.2) for i in new_ids(total)]
        plain = answers(messages, checked, stored)
        fast = wire.render_plain(SMPPMsgResponse, {"messages": plain}, fmt)
        assert fast == wire.render(_general_answers(messages, checked, stored), fmt), messages
        kinds["invalid"] += sum(isinstance(c, Invalid) for c in checked)
        kinds["conflict"] += sum(r.conflict for r in stored)
        kinds["accepted"] += sum(not r.conflict for r in stored)
    assert min(kinds.values()) > 100, kinds


def _fresh(m: dict[str, Any], allowed: frozenset[str] | None) -> Valid | str:
    try:
        return Validator(RULES, allowed, senders=SENDERS).check(
            *(m.get(name) for name in CHECKED))
    except Invalid as exc:
        return str(exc)


def test_one_validator_for_a_request_judges_each_message_as_a_fresh_one_does() -> None:
    rng = random.Random("validator")
    valid = 0
    for _ in range(500):
        allowed = rng.choice([ALLOWED, None])
        shared = Validator(RULES, allowed, senders=SENDERS)
        # Few distinct values, so that the validator's remembered answers are used.
        pool = [_plain_message(rng) for _ in range(4)]
        for _ in range(12):
            m = {**rng.choice(pool), **rng.choice([{}, {"to": rng.choice(NUMBERS)}])}
            try:
                got: Valid | str = shared.check(*(m.get(name) for name in CHECKED))
            except Invalid as exc:
                got = str(exc)
            assert got == _fresh(m, allowed), m
            valid += isinstance(got, Valid)
    assert valid > 300
