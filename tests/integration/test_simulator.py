"""The SMSC simulator over real TCP on 127.0.0.1, driven by a tiny test-side ESME."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from aiosmpplib.codec import GSM7BitCodec

from worker.simulator.config import SimulatorConfig
from worker.simulator.records import decode_gsm
from worker.simulator.server import Simulator
from worker.smpp import pdu
from worker.smpp.pdu import Bind, Pdu, PduBuffer, ShortMessage

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
WAIT = 5.0  # seconds any single wait may take before the test fails
ACCOUNTS = {"smsgw": "secret", "other": "pw2"}
BASE = SimulatorConfig(accounts=ACCOUNTS, id_start=1_000_000_000)
RECEIPT_RE = re.compile(
    r"^id:(?P<id>\S+) sub:001 dlvrd:(?P<dlvrd>\d{3}) submit date:(?P<submit>\d+) "
    r"done date:(?P<done>\d+) stat:(?P<stat>[A-Z]+) err:(?P<err>\d{3}) text:(?P<text>.*)$"
)


class Esme:
    """Just enough of an ESME to drive the simulator: send PDUs, read PDUs, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._frames = PduBuffer()
        self._ready: list[Pdu] = []
        self._seq = 0

    @classmethod
    async def connect(cls, port: int) -> Esme:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, command_id: int, body: bytes = b"", seq: int | None = None) -> int:
        if seq is None:
            self._seq += 1
            seq = self._seq
        self._writer.write(pdu.encode_pdu(command_id, 0, seq, body))
        return seq

    async def read(self) -> Pdu:
        async with asyncio.timeout(WAIT):
            while not self._ready:
                data = await self._reader.read(65536)
                if not data:
                    raise ConnectionError("closed by the simulator")
                self._ready.extend(self._frames.feed(data))
        return self._ready.pop(0)

    async def request(self, command_id: int, body: bytes = b"") -> Pdu:
        seq = self.send(command_id, body)
        answer = await self.read()
        assert answer.seq == seq
        return answer

    async def bind(
        self, command_id: int = pdu.BIND_TRANSCEIVER, system_id: str = "smsgw", pw: str = "secret"
    ) -> Pdu:
        return await self.request(command_id, Bind(system_id, pw).encode())

    async def submit(self, destination: str = "447700900001", **fields: object) -> Pdu:
        return await self.request(pdu.SUBMIT_SM, _submit_body(destination, **fields))

    async def wait_closed(self) -> bool:
        """True when the simulator closes the connection (reading nothing more meanwhile)."""
        async with asyncio.timeout(WAIT):
            return await self._reader.read(65536) == b""

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError:
            pass


def _submit_body(destination: str, **fields: object) -> bytes:
    message = ShortMessage(source_addr="SENDER", destination_addr=destination, short_message=b"hi")
    for name, value in fields.items():
        setattr(message, name, value)
    return message.encode()


SimFactory = Callable[..., Awaitable[Simulator]]


@pytest.fixture
async def make_sim() -> AsyncIterator[SimFactory]:
    """Start simulators on free ports (config = BASE with overrides); all stopped afterwards."""
    started: list[Simulator] = []

    async def factory(**overrides: object) -> Simulator:
        sim = Simulator(replace(BASE, **overrides))  # type: ignore[arg-type]
        await sim.start("127.0.0.1", 0)
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        await sim.stop()


@pytest.fixture
async def esmes() -> AsyncIterator[Callable[[int], Awaitable[Esme]]]:
    """Open test ESMEs; all closed afterwards."""
    opened: list[Esme] = []

    async def connect(port: int) -> Esme:
        esme = await Esme.connect(port)
        opened.append(esme)
        return esme

    yield connect
    for esme in opened:
        await esme.close()


def _receipt_fields(deliver: Pdu) -> tuple[ShortMessage, dict[str, str]]:
    assert deliver.command_id == pdu.DELIVER_SM
    message = ShortMessage.decode(deliver.body)
    match = RECEIPT_RE.match(message.short_message.decode("ascii"))
    assert match is not None, message.short_message
    return message, match.groupdict()


# --- binds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command_id", "resp_id"),
    [
        (pdu.BIND_TRANSMITTER, pdu.BIND_TRANSMITTER_RESP),
        (pdu.BIND_RECEIVER, pdu.BIND_RECEIVER_RESP),
        (pdu.BIND_TRANSCEIVER, pdu.BIND_TRANSCEIVER_RESP),
    ],
)
async def test_each_bind_type_succeeds_with_good_credentials(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]], command_id: int, resp_id: int
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    resp = await esme.bind(command_id)
    assert (resp.command_id, resp.status) == (resp_id, pdu.ESME_ROK)
    assert pdu.decode_message_id(resp.body) == "smsc-sim"
    assert sum(sim.stats()["binds"].values()) == 1


@pytest.mark.parametrize(
    ("system_id", "password", "status"),
    [("smsgw", "wrong", pdu.ESME_RINVPASWD), ("nobody", "secret", pdu.ESME_RINVSYSID)],
)
async def test_bind_with_bad_credentials_is_refused(
    make_sim: SimFactory,
    esmes: Callable[[int], Awaitable[Esme]],
    system_id: str,
    password: str,
    status: int,
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    resp = await esme.bind(pdu.BIND_TRANSMITTER, system_id, password)
    assert (resp.command_id, resp.status) == (pdu.BIND_TRANSMITTER_RESP, status)
    assert (await esme.submit()).status == pdu.ESME_RINVBNDSTS


async def test_second_bind_on_a_connection_is_already_bound(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    assert (await esme.bind()).status == pdu.ESME_ROK
    assert (await esme.bind(pdu.BIND_RECEIVER)).status == pdu.ESME_RALYBND


async def test_submit_before_bind_is_invalid_bind_status(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    resp = await esme.submit()
    assert (resp.command_id, resp.status) == (pdu.SUBMIT_SM_RESP, pdu.ESME_RINVBNDSTS)
    assert sim.stats()["submits"] == 0


async def test_submit_on_a_receiver_bind_is_invalid_bind_status(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    await esme.bind(pdu.BIND_RECEIVER)
    assert (await esme.submit()).status == pdu.ESME_RINVBNDSTS


# --- the basic exchange ------------------------------------------------------------------------


async def test_submits_get_unique_message_ids(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    first, second = await esmes(sim.port), await esmes(sim.port)
    await first.bind(pdu.BIND_TRANSMITTER)
    await second.bind(pdu.BIND_TRANSMITTER)
    ids = []
    for esme in (first, second, first, second, first):
        resp = await esme.submit()
        assert (resp.command_id, resp.status) == (pdu.SUBMIT_SM_RESP, pdu.ESME_ROK)
        ids.append(pdu.decode_message_id(resp.body))
    assert len(set(ids)) == 5
    assert all(re.fullmatch(r"[0-9a-f]+", i) for i in ids)
    assert [r.message_id for r in sim.submits] == ids


async def test_decimal_id_format_gives_decimal_ids(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(id_format="dec", id_start=42)
    esme = await esmes(sim.port)
    await esme.bind()
    ids = [pdu.decode_message_id((await esme.submit()).body) for _ in range(3)]
    assert ids == ["42", "43", "44"]


async def test_enquire_link_is_answered_before_and_after_bind(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    assert (await esme.request(pdu.ENQUIRE_LINK)).command_id == pdu.ENQUIRE_LINK_RESP
    await esme.bind()
    resp = await esme.request(pdu.ENQUIRE_LINK)
    assert (resp.command_id, resp.status) == (pdu.ENQUIRE_LINK_RESP, pdu.ESME_ROK)
    assert sim.stats()["enquire_links"] == 2


async def test_unbind_is_answered_then_the_connection_closes(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    await esme.bind()
    resp = await esme.request(pdu.UNBIND)
    assert (resp.command_id, resp.status) == (pdu.UNBIND_RESP, pdu.ESME_ROK)
    assert await esme.wait_closed()


async def test_unknown_command_gets_generic_nack_and_session_continues(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    await esme.bind()
    resp = await esme.request(0x00000999)
    assert (resp.command_id, resp.status) == (pdu.GENERIC_NACK, pdu.ESME_RINVCMDID)
    assert (await esme.submit()).status == pdu.ESME_ROK


async def test_malformed_submit_gets_generic_nack_and_session_continues(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    await esme.bind()
    resp = await esme.request(pdu.SUBMIT_SM, b"\x00\x01\x01no-terminator")
    assert (resp.command_id, resp.status) == (pdu.GENERIC_NACK, pdu.ESME_RINVCMDLEN)
    assert (await esme.submit()).status == pdu.ESME_ROK


async def test_impossible_command_length_gets_generic_nack_and_close(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    esme._writer.write((8).to_bytes(4, "big") + bytes(12))
    resp = await esme.read()
    assert (resp.command_id, resp.status) == (pdu.GENERIC_NACK, pdu.ESME_RINVCMDLEN)
    assert await esme.wait_closed()


# --- receipts ----------------------------------------------------------------------------------


async def test_receipt_reaches_a_receiver_of_the_same_system_id_with_tlvs_and_text(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    tx, rx, stranger = await esmes(sim.port), await esmes(sim.port), await esmes(sim.port)
    await tx.bind(pdu.BIND_TRANSMITTER)
    await rx.bind(pdu.BIND_RECEIVER)
    await stranger.bind(pdu.BIND_RECEIVER, "other", "pw2")
    text = b"Hello from the receipts test, longer than twenty"
    resp = await tx.submit("447700900002", registered_delivery=1, short_message=text)
    message_id = pdu.decode_message_id(resp.body)

    deliver = await rx.read()
    message, fields = _receipt_fields(deliver)
    assert message.esm_class == 0x04
    assert (message.source_addr, message.destination_addr) == ("447700900002", "SENDER")
    assert fields["id"] == message_id
    assert (fields["stat"], fields["dlvrd"], fields["err"]) == ("DELIVRD", "001", "000")
    assert fields["text"] == text[:20].decode()
    assert len(fields["submit"]) == len(fields["done"]) == 10
    assert message.tlvs[pdu.RECEIPTED_MESSAGE_ID] == message_id.encode() + b"\x00"
    assert message.tlvs[pdu.MESSAGE_STATE] == b"\x02"

    rx.send(pdu.DELIVER_SM_RESP, b"\x00", seq=deliver.seq)
    async with asyncio.timeout(WAIT):
        await sim.wait_for_receipts_acked(1)
    assert sim.stats()["receipts_sent"] == 1
    # The other account's receiver got nothing: its next PDU is the answer to its own request.
    assert (await stranger.request(pdu.ENQUIRE_LINK)).command_id == pdu.ENQUIRE_LINK_RESP


async def test_no_receipt_without_registered_delivery(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    await esme.bind()
    await esme.submit(registered_delivery=0)
    assert (await esme.request(pdu.ENQUIRE_LINK)).command_id == pdu.ENQUIRE_LINK_RESP
    assert sim.stats()["receipts_sent"] == 0


async def test_failure_only_receipts_skip_delivered_messages(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(receipt_states={"DELIVRD": 1, "UNDELIV": 1}, seed=3)
    esme = await esmes(sim.port)
    await esme.bind()
    for _ in range(20):
        esme.send(pdu.SUBMIT_SM, _submit_body("1", registered_delivery=2))
    responses: list[Pdu] = []
    receipts: list[Pdu] = []
    # Once all 20 are answered, receipts_sent is final (receipts go out with their batch).
    while len(responses) < 20 or len(receipts) < sim.stats()["receipts_sent"]:
        answer = await esme.read()
        (receipts if answer.command_id == pdu.DELIVER_SM else responses).append(answer)
    states = {_receipt_fields(p)[1]["stat"] for p in receipts}
    assert states == {"UNDELIV"}
    assert 0 < sim.stats()["receipts_sent"] < 20


async def test_receipt_states_follow_the_configured_mix_with_message_state_tlv(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(receipt_states={"EXPIRED": 1, "REJECTD": 1}, seed=7)
    esme = await esmes(sim.port)
    await esme.bind()
    for _ in range(30):
        esme.send(pdu.SUBMIT_SM, _submit_body("1", registered_delivery=1))
    pdus = [await esme.read() for _ in range(60)]
    receipts = [_receipt_fields(p) for p in pdus if p.command_id == pdu.DELIVER_SM]
    assert len(receipts) == 30
    seen = {(fields["stat"], message.tlvs[pdu.MESSAGE_STATE]) for message, fields in receipts}
    assert seen == {("EXPIRED", b"\x03"), ("REJECTD", b"\x08")}
    assert all(fields["dlvrd"] == "000" for _, fields in receipts)


async def test_receipt_with_12_digit_dates(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(date_digits=12)
    esme = await esmes(sim.port)
    await esme.bind()
    await esme.submit(registered_delivery=1)
    _, fields = _receipt_fields(await esme.read())
    assert len(fields["submit"]) == len(fields["done"]) == 12


async def test_receipt_id_in_decimal_while_response_ids_are_hex(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(id_format="hex", receipt_id_format="dec")
    esme = await esmes(sim.port)
    await esme.bind()
    hex_id = pdu.decode_message_id((await esme.submit(registered_delivery=1)).body)
    message, fields = _receipt_fields(await esme.read())
    assert fields["id"] == str(int(hex_id, 16))
    assert message.tlvs[pdu.RECEIPTED_MESSAGE_ID] == fields["id"].encode() + b"\x00"
    assert fields["id"] != hex_id


async def test_receipt_before_response_writes_deliver_sm_first(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(receipt_before_response=True, ack_delay=0.01, receipt_delay=1.0)
    esme = await esmes(sim.port)
    await esme.bind()
    seq = esme.send(pdu.SUBMIT_SM, _submit_body("1", registered_delivery=1))
    first, second = await esme.read(), await esme.read()
    assert first.command_id == pdu.DELIVER_SM
    assert (second.command_id, second.seq) == (pdu.SUBMIT_SM_RESP, seq)
    assert _receipt_fields(first)[1]["id"] == pdu.decode_message_id(second.body)


async def test_receipt_waits_for_a_receiver_and_unacked_receipts_are_resent(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    tx = await esmes(sim.port)
    await tx.bind(pdu.BIND_TRANSMITTER)
    message_id = pdu.decode_message_id((await tx.submit(registered_delivery=1)).body)
    assert sim.stats()["receipts_pending"] == 1

    first_rx = await esmes(sim.port)
    await first_rx.bind(pdu.BIND_RECEIVER)
    assert _receipt_fields(await first_rx.read())[1]["id"] == message_id
    await first_rx.close()  # without deliver_sm_resp

    second_rx = await esmes(sim.port)
    await second_rx.bind(pdu.BIND_RECEIVER)
    again = await second_rx.read()
    assert _receipt_fields(again)[1]["id"] == message_id
    second_rx.send(pdu.DELIVER_SM_RESP, b"\x00", seq=again.seq)
    async with asyncio.timeout(WAIT):
        await sim.wait_for_receipts_acked(1)
    stats = sim.stats()
    assert (stats["receipts_sent"], stats["receipts_resent"]) == (2, 1)


# --- misbehaviour ------------------------------------------------------------------------------


async def test_error_by_destination_prefix_including_a_vendor_code(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(error_prefixes={"999": pdu.ESME_RINVDSTADR, "998": 0x400})
    esme = await esmes(sim.port)
    await esme.bind()
    bad = await esme.submit("999123")
    vendor = await esme.submit("998123")
    good = await esme.submit("997123")
    assert (bad.status, bad.body) == (pdu.ESME_RINVDSTADR, b"")
    assert vendor.status == 0x400
    assert good.status == pdu.ESME_ROK
    assert sim.stats()["responses"] == {"ESME_RINVDSTADR": 1, "0x00000400": 1, "ESME_ROK": 1}


async def test_error_by_rate_is_close_to_the_rate_and_reproducible(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    async def run(seed: int) -> list[int]:
        sim = await make_sim(error_rates={pdu.ESME_RTHROTTLED: 0.25}, seed=seed)
        esme = await esmes(sim.port)
        await esme.bind()
        for _ in range(400):
            esme.send(pdu.SUBMIT_SM, _submit_body("1"))
        return [(await esme.read()).status for _ in range(400)]

    statuses = await run(seed=11)
    throttled = statuses.count(pdu.ESME_RTHROTTLED)
    assert 60 <= throttled <= 140
    assert set(statuses) == {pdu.ESME_ROK, pdu.ESME_RTHROTTLED}
    assert await run(seed=11) == statuses


async def test_nack_rate_answers_with_generic_nack(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(nack_rate=1.0)
    esme = await esmes(sim.port)
    await esme.bind()
    resp = await esme.submit()
    assert (resp.command_id, resp.status) == (pdu.GENERIC_NACK, pdu.ESME_RSYSERR)
    assert sim.submits[0].response == "generic_nack"


async def test_max_tps_throttles_beyond_the_rate(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(max_tps=5)
    esme = await esmes(sim.port)
    await esme.bind()
    for _ in range(20):
        esme.send(pdu.SUBMIT_SM, _submit_body("1"))
    statuses = [(await esme.read()).status for _ in range(20)]
    # A one-second bucket: 5 pass at once (a sixth only if the burst took 200 ms).
    assert statuses.count(pdu.ESME_ROK) in (5, 6)
    assert statuses.count(pdu.ESME_RTHROTTLED) == 20 - statuses.count(pdu.ESME_ROK)


async def test_window_enforcement_rejects_beyond_n_outstanding(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(window=3, ack_delay=0.2)
    esme, other = await esmes(sim.port), await esmes(sim.port)
    await esme.bind()
    await other.bind()
    seqs = [esme.send(pdu.SUBMIT_SM, _submit_body("1")) for _ in range(5)]
    answers = {p.seq: p.status for p in [await esme.read() for _ in range(5)]}
    assert [answers[s] for s in seqs] == [pdu.ESME_ROK] * 3 + [pdu.ESME_RMSGQFUL] * 2
    # The window is per bind, and slots free up once answered.
    assert (await other.submit()).status == pdu.ESME_ROK
    assert (await esme.submit()).status == pdu.ESME_ROK


async def test_drop_after_n_pdus_closes_the_connection(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(drop_after=3)
    esme = await esmes(sim.port)
    await esme.bind()
    assert (await esme.submit()).status == pdu.ESME_ROK
    esme.send(pdu.SUBMIT_SM, _submit_body("1"))
    assert await esme.wait_closed()
    assert sim.stats()["drops"] == 1
    assert len(sim.submits) == 1


async def test_no_answer_mode_never_answers_submit_sm(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim(no_answer=True)
    esme = await esmes(sim.port)
    await esme.bind()
    esme.send(pdu.SUBMIT_SM, _submit_body("1"))
    # enquire_link is still answered, and it is the next thing on the wire.
    assert (await esme.request(pdu.ENQUIRE_LINK)).command_id == pdu.ENQUIRE_LINK_RESP
    assert sim.submits[0].status is None and sim.submits[0].response == "none"
    assert sim.stats()["unanswered"] == 1


# --- records, log, stats, CLI ------------------------------------------------------------------


async def test_wait_for_submits_returns_once_n_arrived(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]]
) -> None:
    sim = await make_sim()
    esme = await esmes(sim.port)
    await esme.bind()
    waiter = asyncio.ensure_future(sim.wait_for_submits(3))
    for _ in range(3):
        esme.send(pdu.SUBMIT_SM, _submit_body("1"))
    async with asyncio.timeout(WAIT):
        await waiter
    assert len(sim.submits) == 3


async def test_jsonl_log_records_udh_sar_and_decoded_text(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]], tmp_path: Path
) -> None:
    log = tmp_path / "submits.jsonl"
    sim = await make_sim(log_path=str(log), error_prefixes={"999": pdu.ESME_RINVDSTADR})
    esme = await esmes(sim.port)
    await esme.bind(pdu.BIND_TRANSMITTER)  # receipts stay pending: only responses on the wire
    gsm = GSM7BitCodec().encode("Price: 5€ {ok}")[0]
    await esme.submit("4401", data_coding=0, short_message=gsm, registered_delivery=1)
    udh8 = b"\x05\x00\x03\x7b\x02\x01"
    await esme.submit(
        "4402", esm_class=0x40, data_coding=8, short_message=udh8 + "Привет".encode("utf-16-be")
    )
    udh16 = b"\x06\x08\x04\x12\x34\x03\x02"
    await esme.submit(
        "4403", esm_class=0x40, data_coding=3, short_message=udh16 + "café".encode("latin-1")
    )
    sar = {
        pdu.SAR_MSG_REF_NUM: b"\x01\x02",
        pdu.SAR_TOTAL_SEGMENTS: b"\x02",
        pdu.SAR_SEGMENT_SEQNUM: b"\x01",
    }
    await esme.submit("4404", short_message=b"sar part", tlvs=sar)
    rejected = await esme.submit("999000")
    await sim.stop()

    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    assert [line["destination"] for line in lines] == ["4401", "4402", "4403", "4404", "999000"]
    plain, ucs2, latin, segmented, error = lines
    assert plain["text"] == "Price: 5€ {ok}"
    assert (plain["system_id"], plain["source"], plain["registered_delivery"]) == (
        "smsgw",
        "SENDER",
        1,
    )
    assert plain["udh"] is None and plain["sar"] is None
    assert plain["message_id"] == sim.submits[0].message_id != ""
    assert ucs2["text"] == "Привет"
    assert (ucs2["data_coding"], ucs2["esm_class"]) == (8, 0x40)
    assert ucs2["udh"] == {"iei": 0, "ref": 0x7B, "total": 2, "seq": 1}
    assert latin["text"] == "café"
    assert latin["udh"] == {"iei": 8, "ref": 0x1234, "total": 3, "seq": 2}
    assert segmented["sar"] == {"iei": None, "ref": 0x0102, "total": 2, "seq": 1}
    assert segmented["text"] == "sar part"
    assert (error["status"], error["status_name"], error["message_id"]) == (
        pdu.ESME_RINVDSTADR,
        "ESME_RINVDSTADR",
        "",
    )
    assert rejected.status == pdu.ESME_RINVDSTADR
    assert all(line["status"] == 0 for line in lines[:4])


@pytest.mark.parametrize(
    "data",
    [bytes(range(0x1B)) + bytes(range(0x1C, 0x100)), b"\x1b\x65uro \x1b\x28x\x1b\x29", b""],
)
def test_fast_gsm_decoding_matches_the_aiosmpplib_codec(data: bytes) -> None:
    assert decode_gsm(data) == GSM7BitCodec().decode(data, "replace")[0]


async def test_stats_file_is_written_at_stop(
    make_sim: SimFactory, esmes: Callable[[int], Awaitable[Esme]], tmp_path: Path
) -> None:
    stats_path = tmp_path / "stats.json"
    sim = await make_sim(stats_path=str(stats_path))
    esme = await esmes(sim.port)
    await esme.bind()
    await esme.submit()
    await sim.stop()
    stats = json.loads(stats_path.read_text())
    assert stats["submits"] == 1
    assert stats["binds"] == {"transceiver": 1}
    assert stats["responses"] == {"ESME_ROK": 1}


async def test_cli_prints_its_address_serves_and_stops_on_sigterm(
    esmes: Callable[[int], Awaitable[Esme]], tmp_path: Path
) -> None:
    log, stats = tmp_path / "log.jsonl", tmp_path / "stats.json"
    repo = str(REPO_ROOT)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.simulator.cli",
        "--port",
        "0",
        "--account",
        "cli:pw",
        "--error-prefix",
        "999:0x0B",
        "--log",
        str(log),
        "--stats",
        str(stats),
        stdout=asyncio.subprocess.PIPE,
        cwd=repo,
        env={**os.environ, "PYTHONPATH": repo},
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(WAIT * 2):
            line = (await proc.stdout.readline()).decode()
        match = re.fullmatch(r"smsc-sim listening on 127\.0\.0\.1:(\d+)\n", line)
        assert match is not None, line
        esme = await esmes(int(match.group(1)))
        assert (await esme.bind(pdu.BIND_TRANSMITTER, "cli", "pw")).status == pdu.ESME_ROK
        assert (await esme.submit("999")).status == pdu.ESME_RINVDSTADR
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(WAIT * 2):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert json.loads(stats.read_text())["responses"] == {"ESME_RINVDSTADR": 1}
    assert json.loads(log.read_text())["destination"] == "999"
