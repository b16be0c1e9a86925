"""The door a message came through (http or smpp) where messages are seen: the status lookup,
the webhook event body and the accepted-messages counter."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from gateway.metrics import GatewayMetrics
from gateway.views.status import to_dto
from worker.store import AcceptResult, NewMessage, Record
from worker.webhooks import payload


def test_the_status_lookup_shows_the_door_http_when_the_record_has_none() -> None:
    assert to_dto(Record("a1", {"status": "queued", "door": "smpp"})).door == "smpp"
    assert to_dto(Record("a2", {"status": "queued"})).door == "http"


def test_a_status_event_body_carries_the_door_and_keeps_every_other_field() -> None:
    fields = {"kind": "status", "id": "a1", "status": "delivered", "channel": "sim",
              "to": "27820000001", "at": "1700000000000"}
    smpp = payload({**fields, "door": "smpp"})
    assert smpp["door"] == "smpp"
    assert payload(fields)["door"] == "http"  # an event written before the field existed
    assert set(smpp) == {"eventId", "timestamp", "type", "apiMessageId", "clientMessageId",
                         "channel", "to", "status", "error", "receipt", "door"}


def test_accepted_messages_are_counted_per_channel_and_door() -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    messages = [NewMessage(api_id=str(n), account="acme", channel="sim", to="27820000001",
                           content="hi", encoding="gsm7", segments=1,
                           door="smpp" if n % 2 else "") for n in range(5)]
    metrics.count_accept(messages, [AcceptResult(api_id=m.api_id) for m in messages])
    r = metrics.registry
    assert r.get_sample_value("smsgw_messages_accepted_total",
                              {"channel": "sim", "door": "http"}) == 3
    assert r.get_sample_value("smsgw_messages_accepted_total",
                              {"channel": "sim", "door": "smpp"}) == 2
