"""An SMPP client for the SMPP server's tests, on the smpplib package (which this project does
not write): blocking calls, so tests run them in a thread (``asyncio.to_thread``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp

SOCKET_TIMEOUT = 20.0  # a blocking read never outlives a test's own timeout by much


@dataclass
class Receipt:
    """A deliver_sm received (and answered) by the client."""

    receipted_id: str
    message_state: int
    esm_class: int
    text: str
    source: str = ""
    destination: str = ""
    data_coding: int = 0
    octets: bytes = b""  # short_message, or message_payload when that is empty


@dataclass
class Esme:
    """One connection of an SMPP client to the gateway's SMPP server."""

    port: int
    host: str = "127.0.0.1"
    ssl_context: Any = None  # an ssl.SSLContext: connect over TLS
    client: Any = None
    receipts: list[Receipt] = field(default_factory=list)
    answers: dict[int, tuple[int, str]] = field(default_factory=dict)  # seq -> (status, id)

    def connect(self) -> Esme:
        self.client = smpplib.client.Client(self.host, self.port, timeout=SOCKET_TIMEOUT,
                                            ssl_context=self.ssl_context,
                                            allow_unknown_opt_params=True)
        self.client.connect()
        return self

    def bind(self, kind: str, system_id: str, password: str) -> int:
        """Bind as kind (transmitter, receiver, transceiver); the command_status."""
        try:
            getattr(self.client, f"bind_{kind}")(system_id=system_id, password=password)
        except smpplib.exceptions.PDUError as exc:
            return int(exc.args[1])
        return 0

    def submit(self, to: str, text: bytes, *, registered_delivery: int = 1,
               source_addr: str = "", **extra: Any) -> int:
        """Send a submit_sm (not waiting for its answer); its sequence number. Without a
        ``source_addr`` the gateway sends it from the channel's."""
        pdu = self.client.send_message(
            source_addr_ton=5 if source_addr else 0, source_addr=source_addr,
            dest_addr_ton=1, dest_addr_npi=1,
            destination_addr=to, short_message=text, registered_delivery=registered_delivery,
            **extra)
        return int(pdu.sequence)

    def read(self) -> Any:
        """The next PDU; a deliver_sm is answered and recorded; None when the server closed."""
        try:
            pdu = self.client.read_pdu()
        except (smpplib.exceptions.ConnectionError, OSError):
            return None
        if pdu.command == "deliver_sm":
            octets = pdu.short_message or getattr(pdu, "message_payload", None) or b""
            self.receipts.append(Receipt(_text(pdu.receipted_message_id),
                                         int(pdu.message_state or 0), int(pdu.esm_class),
                                         _text(pdu.short_message), _text(pdu.source_addr),
                                         _text(pdu.destination_addr), int(pdu.data_coding),
                                         octets))
            resp = smpplib.smpp.make_pdu("deliver_sm_resp", client=self.client)
            resp.sequence = pdu.sequence  # as smpplib's own read_once() answers
            try:
                self.client.send_pdu(resp)
            except (smpplib.exceptions.ConnectionError, OSError):
                return None
        elif pdu.command == "submit_sm_resp":
            self.answers[int(pdu.sequence)] = (int(pdu.status), _text(pdu.message_id))
        return pdu

    def submit_all(self, items: list[tuple[str, bytes]], window: int) -> list[tuple[int, str]]:
        """Submit every (to, text) with at most ``window`` unanswered; (status, id) of each."""
        return self.submit_each([(to, text, {}) for to, text in items], window)

    def submit_each(self, items: list[tuple[str, bytes, dict[str, Any]]],
                    window: int) -> list[tuple[int, str]]:
        """:meth:`submit_all` with submit_sm fields of each (esm_class, SAR TLVs...)."""
        seqs: list[int] = []
        for start in range(0, len(items), window):
            batch = [self.submit(to, text, **extra)
                     for to, text, extra in items[start:start + window]]
            seqs += batch
            while not all(s in self.answers for s in batch):
                if self.read() is None:
                    raise ConnectionError("the server closed the connection")
        return [self.answers[s] for s in seqs]

    def submit_one(self, to: str, text: bytes, **extra: Any) -> tuple[int, str]:
        """One submit_sm (``extra``: more of its fields) and its answer: (status, id)."""
        return self.submit_each([(to, text, extra)], 1)[0]

    def read_receipts(self, count: int) -> list[Receipt]:
        """Read until ``count`` receipts in all have come."""
        while len(self.receipts) < count:
            if self.read() is None:
                raise ConnectionError(f"the server closed the connection after "
                                      f"{len(self.receipts)} receipts")
        return self.receipts

    def send_raw(self, data: bytes) -> None:
        self.client._socket.sendall(data)

    def unbind(self) -> None:
        self.client.unbind()

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.disconnect()
            except (OSError, smpplib.exceptions.ConnectionError):
                pass
            self.client.state = smpplib.consts.SMPP_CLIENT_STATE_CLOSED


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


__all__ = ["Esme", "Receipt", "socket"]
