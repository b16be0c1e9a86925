"""One SMPP client connection: bind, enquire_link, unbind, submit_sm in, deliver_sm out.

A submit_sm is answered only once its message is stored (the same accept script as an HTTP
send, batched with the other submits of this process); submits of one bind run concurrently,
so a client's window is honoured. Idempotency is by the client's sequence number within this
bind only: a submit_sm sent again with the same sequence and body gets the first answer.
A part of a message the client concatenated itself (UDH or SAR) is stored with its message's
other parts (concat.py) and answered with its own message_id, ``{apiMessageId}-{part}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import redis.exceptions

from gateway.smpp_server import concat
from gateway.smpp_server.submit import ESME_RINVDCS, ESME_RINVESMCLASS, Refused, to_message
from gateway.smpp_server.users import SmppUser, password_matches, user_of
from worker.jobs import JOB_EXPIRY_SECONDS, wake_job
from worker.smpp.pdu import (
    BIND_RECEIVER,
    BIND_TRANSCEIVER,
    BIND_TRANSMITTER,
    DELIVER_SM,
    DELIVER_SM_RESP,
    ENQUIRE_LINK,
    ENQUIRE_LINK_RESP,
    ESME_RALYBND,
    ESME_RBINDFAIL,
    ESME_RINVBNDSTS,
    ESME_RINVCMDID,
    ESME_RINVCMDLEN,
    ESME_RINVPASWD,
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    GENERIC_NACK,
    RESP_BIT,
    SUBMIT_SM,
    SUBMIT_SM_RESP,
    UNBIND,
    UNBIND_RESP,
    Bind,
    Pdu,
    PduBuffer,
    PduError,
    ShortMessage,
    encode_c_string,
    encode_pdu,
    is_response,
)
from worker.store import (
    REDIS_ERRORS,
    AcceptCall,
    AcceptResult,
    LimitExceeded,
    NewPart,
    NotReplicated,
    Wake,
    now_ms,
)

if TYPE_CHECKING:
    from gateway.smpp_server.server import ServerContext

log = logging.getLogger("smsgw.smpp_server")

SEQUENCES_REMEMBERED = 10_000  # per bind, for idempotency by sequence number
_MAX_SEQ = 0x7FFFFFFF
_READ_SIZE = 65536
_CAN_SUBMIT = {BIND_TRANSMITTER: True, BIND_RECEIVER: False, BIND_TRANSCEIVER: True}
_LIMIT_STATUS = {"rate": ESME_RTHROTTLED, "burst": ESME_RTHROTTLED, "quota": ESME_RMSGQFUL}
# a part that contradicts its message's earlier parts (store_part.lua's reasons)
_CONTRADICTION_STATUS = {"total": ESME_RINVESMCLASS, "seq": ESME_RINVESMCLASS,
                         "dcs": ESME_RINVDCS}


def new_wake() -> Wake:
    """The wake-up job a message accepted now is enqueued with."""
    job_id, payload = wake_job(now_ms())
    return Wake(job_id, payload, JOB_EXPIRY_SECONDS)


def auth_delay(failures: int, free: int, most: float) -> float:
    """Seconds to hold back the answer to wrong password number ``failures`` from an address:
    none for the first ``free``, then 0.5 s doubling each time, up to ``most``."""
    if failures <= free:
        return 0.0
    return min(most, 0.5 * 2.0 ** min(failures - free - 1, 30))


class ClientSession:
    """SMSC side of one client connection; :meth:`run` serves it until it ends."""

    def __init__(self, ctx: ServerContext, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self._ctx = ctx
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "?"
        self.bind_id = secrets.token_hex(8)
        self.user: SmppUser | None = None
        self.can_submit = False
        self.can_receive = False
        self._closed = False
        self._seq = 0
        self._waiting: dict[int, asyncio.Future[int]] = {}  # deliver_sm seq -> its status
        self._tasks: set[asyncio.Task[None]] = set()
        # (sequence, body digest) -> the submit's answer, for a client that sends it again
        self._answers: OrderedDict[tuple[int, bytes], asyncio.Future[bytes]] = OrderedDict()

    @property
    def free(self) -> int:
        """deliver_sm this bind may still have in flight."""
        return 0 if self._closed else self._ctx.settings.window - len(self._waiting)

    @property
    def account(self) -> str:
        """The bound user's account ('' before bind)."""
        return self.user.account if self.user is not None else ""

    async def run(self) -> None:
        """Serve the connection until the client unbinds or goes, or a PDU is malformed."""
        frames = PduBuffer()
        try:
            while not self._closed:
                try:
                    async with asyncio.timeout(self._ctx.settings.inactivity_seconds):
                        data = await self._reader.read(_READ_SIZE)
                except TimeoutError:
                    log.info("smpp client %s idle too long; closing", self.address)
                    break
                if not data:
                    break
                try:
                    pdus = frames.feed(data)
                except PduError as exc:
                    self._nack(0, ESME_RINVCMDLEN, f"unframeable data ({exc})")
                    break
                for pdu in pdus:
                    if self._closed:
                        break
                    await self._dispatch(pdu)
                await self._writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            await self._end()

    # --- dispatch ------------------------------------------------------------------------------

    async def _dispatch(self, pdu: Pdu) -> None:
        cid = pdu.command_id
        if cid == SUBMIT_SM:
            self._spawn(self._on_submit(pdu))
        elif cid in _CAN_SUBMIT:
            await self._on_bind(pdu)
        elif cid == ENQUIRE_LINK:
            self._send(ENQUIRE_LINK_RESP, ESME_ROK, pdu.seq)
        elif cid == UNBIND:
            await self._settle_submits()
            self._send(UNBIND_RESP, ESME_ROK, pdu.seq)
            self._closed = True
        elif cid in (DELIVER_SM_RESP, GENERIC_NACK):
            fut = self._waiting.get(pdu.seq)
            if fut is not None and not fut.done():
                fut.set_result(pdu.status)
        elif cid == UNBIND_RESP:
            self._closed = True
        elif not is_response(cid):
            self._send(GENERIC_NACK, ESME_RINVCMDID, pdu.seq)
        # other responses (enquire_link_resp...) need nothing

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- bind ----------------------------------------------------------------------------------

    async def _on_bind(self, pdu: Pdu) -> None:
        resp = pdu.command_id | RESP_BIT
        if self.user is not None:
            self._send(resp, ESME_RALYBND, pdu.seq)
            return
        try:
            bind = Bind.decode(pdu.body)
        except PduError as exc:
            self._nack(pdu.seq, ESME_RINVCMDLEN, f"malformed bind ({exc})")
            return
        try:
            status, user = await self._authenticate(bind)
        except REDIS_ERRORS:
            log.warning("smpp bind of %r from %s: Redis unavailable", bind.system_id,
                        self.address)
            status, user = ESME_RSYSERR, None
        if user is None:
            self._send(resp, status, pdu.seq)
            return
        self.user = user
        self.can_submit = _CAN_SUBMIT[pdu.command_id]
        self.can_receive = pdu.command_id != BIND_TRANSMITTER
        self._ctx.bound(self)
        self._send(resp, ESME_ROK, pdu.seq, encode_c_string(self._ctx.system_id))
        log.info("smpp bind %s as %s (account %s) from %s", self.bind_id, user.system_id,
                 user.account, self.address)

    async def _authenticate(self, bind: Bind) -> tuple[int, SmppUser | None]:
        ctx = self._ctx
        fields = await ctx.users.user(bind.system_id)
        stored = fields.get("pw", "") if fields else ""
        if not stored or not await asyncio.to_thread(password_matches, bind.password, stored):
            # An unknown system_id is answered as a wrong password: no probing for names.
            failures = await ctx.users.note_auth_failure(self.address,
                                                         ctx.settings.auth_window_seconds)
            delay = auth_delay(failures, ctx.settings.auth_failures_free,
                               ctx.settings.auth_delay_max_seconds)
            log.info("smpp bind refused: wrong password for %r from %s (%d lately)",
                     bind.system_id, self.address, failures)
            if delay:
                await asyncio.sleep(delay)
            return ESME_RINVPASWD, None
        assert fields is not None
        user = user_of(fields)
        if not user.enabled or (user.expires_at_ms and user.expires_at_ms <= now_ms()):
            return ESME_RBINDFAIL, None
        if ctx.rules.routes:  # routes may match the account's parent, as for an API key
            account = await ctx.store.account(user.account)
            user = replace(user, parent=account.parent if account else "")
        lease_ms = int(ctx.settings.bind_lease_seconds * 1000)
        if not await ctx.users.acquire_bind(user.system_id, self.bind_id, lease_ms,
                                            user.max_binds):
            log.info("smpp bind refused: %s already has %d binds", user.system_id,
                     user.max_binds)
            return ESME_RBINDFAIL, None
        return ESME_ROK, user

    # --- submit_sm -----------------------------------------------------------------------------

    async def _on_submit(self, pdu: Pdu) -> None:
        if not self.can_submit or self.user is None:
            self._send(SUBMIT_SM_RESP, ESME_RINVBNDSTS, pdu.seq)
            return
        key = (pdu.seq, hashlib.sha256(pdu.body).digest())
        earlier = self._answers.get(key)
        if earlier is not None:
            status_body = await asyncio.shield(earlier)
            self._send(SUBMIT_SM_RESP, int.from_bytes(status_body[:4], "big"), pdu.seq,
                       status_body[4:])
            return
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._answers[key] = answer
        while len(self._answers) > SEQUENCES_REMEMBERED:
            self._answers.popitem(last=False)
        try:
            status, body = await self._submit(pdu, self.user)
        except BaseException:
            self._answers.pop(key, None)
            answer.cancel()
            raise
        answer.set_result(status.to_bytes(4, "big") + body)
        if status != ESME_ROK:
            self._answers.pop(key, None)  # only stored messages are remembered
        self._send(SUBMIT_SM_RESP, status, pdu.seq, body)

    async def _submit(self, pdu: Pdu, user: SmppUser) -> tuple[int, bytes]:
        ctx = self._ctx
        try:
            sm = ShortMessage.decode(pdu.body)
        except PduError as exc:
            self._nack(pdu.seq, ESME_RINVCMDLEN, f"malformed submit_sm ({exc})")
            return ESME_RINVCMDLEN, b""
        msg = to_message(sm, api_id=ctx.new_id(), account=user.account, rules=ctx.rules,
                         channels=user.channels, senders=user.senders, parent=user.parent)
        if isinstance(msg, Refused):
            log.info("smpp submit_sm of %s refused: %s", user.system_id, msg.reason)
            return msg.status, b""
        if isinstance(msg, NewPart):
            return await self._submit_part(replace(msg, limits=user.limits), user)
        job_id, payload = wake_job(now_ms())
        call = AcceptCall(user.limits, [msg], ctx.idempotency_window_seconds, job_id, payload,
                          JOB_EXPIRY_SECONDS)
        try:
            result = await ctx.accepts.put(call)
        except (NotReplicated, *REDIS_ERRORS) as exc:
            log.warning("smpp submit_sm of %s not stored: %s", user.system_id, exc)
            return ESME_RSYSERR, b""
        if not isinstance(result, Exception):
            ctx.metrics.count_accept([msg], result)
        if isinstance(result, LimitExceeded):
            return _LIMIT_STATUS[result.reason], b""
        if isinstance(result, Exception):
            log.warning("smpp submit_sm of %s not stored: %s", user.system_id, result)
            return ESME_RSYSERR, b""
        return ESME_ROK, encode_c_string(result[0].api_id)

    async def _submit_part(self, part: NewPart, user: SmppUser) -> tuple[int, bytes]:
        """A part of a message the client concatenated itself: stored (its message made with
        the last part) before it is answered; its message_id is the message's id and its
        part number."""
        ctx = self._ctx
        try:
            answer = await concat.take(ctx.store, part, ctx.rules, ctx.concat_wait_ms,
                                       new_wake())
        except (redis.exceptions.RedisError, *REDIS_ERRORS) as exc:  # a script error too
            log.warning("smpp part of %s not stored: %s", user.system_id, exc)
            return ESME_RSYSERR, b""
        if isinstance(answer, Refused):
            log.info("smpp part of %s refused: %s", user.system_id, answer.reason)
            return answer.status, b""
        if answer.kind == "limited":
            return _LIMIT_STATUS[answer.reason], b""
        if answer.kind == "refused":
            log.info("smpp part %d/%d of %s refused: its %s contradicts the earlier parts'",
                     part.seq, part.total, user.system_id, answer.reason)
            return _CONTRADICTION_STATUS[answer.reason], b""
        if answer.kind not in ("stored", "again", "sent"):
            log.warning("smpp part of %s not stored: %s", user.system_id, answer.kind)
            return ESME_RSYSERR, b""
        if answer.kind == "sent":
            ctx.metrics.count_accept([part.message], [AcceptResult(api_id=answer.api_id)])
        return ESME_ROK, encode_c_string(f"{answer.api_id}-{part.seq}")

    async def _settle_submits(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self._ctx.settings.inactivity_seconds)

    # --- deliver_sm ----------------------------------------------------------------------------

    async def deliver(self, body: bytes) -> int:
        """Send a deliver_sm; its deliver_sm_resp's status. ConnectionError once the session
        has ended, TimeoutError when the client does not answer in receipt_retry_seconds."""
        if self._closed:
            raise ConnectionError("session closed")
        self._seq = self._seq % _MAX_SEQ + 1
        seq = self._seq
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting[seq] = fut
        try:
            self._send(DELIVER_SM, ESME_ROK, seq, body)
            async with asyncio.timeout(self._ctx.settings.receipt_retry_seconds):
                return await fut
        finally:
            self._waiting.pop(seq, None)

    # --- output and end ------------------------------------------------------------------------

    def _send(self, command_id: int, status: int, seq: int, body: bytes = b"") -> None:
        if not self._writer.is_closing():
            self._writer.write(encode_pdu(command_id, status, seq, body))

    def _nack(self, seq: int, status: int, why: str) -> None:
        log.info("smpp client %s: %s; closing the session", self.address, why)
        self._send(GENERIC_NACK, status, seq)
        self._closed = True

    async def _end(self) -> None:
        self._closed = True
        self._writer.close()  # first: nothing below may leave the transport open
        for task in list(self._tasks):
            task.cancel()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(ConnectionError("session closed"))
        if self.user is not None:
            await self._ctx.unbound(self)
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass

    def close_soon(self, why: Callable[[], str] | None = None) -> None:
        """Stop reading and end the session (server shutdown)."""
        self._closed = True
        self._writer.close()
