"""Per-message validation: pure functions from wire values to store-ready messages or reasons."""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from worker.config import Settings
from worker.encoding import SplitMode, TextInfo, analyse
from worker.routing import NumberCheck, Routed, RouteTable, minute_of_week, number_problem
from worker.senders import Senders, sender_problem

# A message whose channel is "route:{name}" is routed by that route (README, Routing).
ROUTE_PREFIX = "route:"
_SEPARATORS = re.compile(r"[,;]")
_FORMATTING = re.compile(r"[\s\-().]")
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Rules:
    """Limits that apply to every message."""

    default_channel: str
    default_country_code: str
    max_segments: int
    channels: Mapping[str, SplitMode]  # each channel's split mode: it decides the count
    # Messages that name no channel are routed (gateway.default_channel is the last route).
    routes: RouteTable = field(default_factory=RouteTable)
    number_check: NumberCheck = "length"
    max_schedule_ms: int = 30 * _DAY_MS  # how far ahead a message may be scheduled
    max_validity_ms: int = 7 * _DAY_MS  # the longest validity: the message retention

    @classmethod
    def from_settings(cls, settings: Settings) -> Rules:
        """The rules the configuration sets, for every door messages come in through."""
        gw = settings.gateway
        return cls(default_channel=gw.default_channel,
                   default_country_code=gw.default_country_code, max_segments=gw.max_segments,
                   channels={n: c.split_mode for n, c in settings.channels.items()},
                   routes=settings.routes, number_check=gw.number_check,
                   max_schedule_ms=gw.max_schedule_seconds * 1000,
                   max_validity_ms=settings.retention_seconds * 1000)

    def timing(self, scheduled_at: int | None, valid_until: int | None, now: int) -> Timing:
        """When a message asking for these (epoch ms, None: not asked) is sent and until
        when; BadSchedule or BadValidity if out of bounds. A time in the past means now."""
        at = 0
        if scheduled_at is not None and scheduled_at > now:
            if scheduled_at - now > self.max_schedule_ms:
                raise BadSchedule(f"a message may be scheduled at most "
                                  f"{_span(self.max_schedule_ms)} ahead")
            at = scheduled_at
        if valid_until is None:
            return Timing(at)
        start = max(at, now)
        if valid_until <= start:
            raise BadValidity("the validity period ends before the message could be sent")
        if valid_until - start > self.max_validity_ms:
            raise BadValidity(f"a validity period may be at most {_span(self.max_validity_ms)}"
                              " (the message retention)")
        return Timing(at, valid_until)


@dataclass(frozen=True, slots=True)
class Timing:
    """When a message is sent, and until when (epoch ms; 0: at once, and no validity)."""

    scheduled_at: int = 0
    valid_until: int = 0


def timed_fingerprint(fingerprint: str, scheduled_at: int | None, valid_until: int | None) -> str:
    """A message's fingerprint (see Validator._fingerprint) with the schedule and validity its
    client gave (as epoch ms, not as applied: a retry after the scheduled time still matches);
    a message without them keeps its plain print."""
    if not fingerprint:
        return ""
    text = f"{fingerprint}\x00{scheduled_at or ''}\x00{valid_until or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _span(ms: int) -> str:
    days, rest = divmod(ms // 1000, 86400)
    return f"{days} days" if not rest else f"{ms // 1000} seconds"


@dataclass(frozen=True, slots=True)
class Target:
    """Where routing sends one recipient of a message that named no channel, or why not."""

    channel: str = ""
    route: str = ""
    chain: str = ""  # the channels it fails over along, comma separated, ``channel`` first
    encoding: str = ""
    segments: int = 0
    refused: str = ""  # why this recipient is not accepted ('' when it is)
    too_long: bool = False  # refused for more segments than the limit on its channel


@dataclass(frozen=True, slots=True)
class Valid:
    """A message that passed validation: one per distinct recipient."""

    channel: str
    recipients: tuple[str, ...]
    content: str
    cmid: str
    encoding: str
    segments: int
    fingerprint: str
    # One per recipient when the message was routed (then ``channel`` is ''); empty when it
    # named its channel, which every recipient then goes to.
    targets: tuple[Target, ...] = ()
    sender: str = ""  # its source address ('' the channel's)
    timing: Timing = Timing()  # scheduled, or with a validity (the HTTP send sets it)


class Invalid(Exception):
    """Why a message was not accepted (the text goes to the client as ``error``)."""


class BadNumber(Invalid):
    """The destination is not a phone number the gateway may send to."""


class TooLong(Invalid):
    """The text needs more segments than the limit."""


class BadSource(Invalid):
    """The sender is not one, or not one the caller may use."""


class BadSchedule(Invalid):
    """The time asked to send the message at is not one this gateway accepts."""


class BadValidity(Invalid):
    """The time asked for the message to expire at is not one this gateway accepts."""


def normalise_number(raw: str, default_cc: str) -> str:
    """E.164 digits without '+', from '+', '00', national and formatted forms."""
    if raw[:1] == "+" and raw[1:].isdigit() and raw.isascii():
        text = raw  # already '+digits', the usual form: no formatting to strip
    else:
        text = _FORMATTING.sub("", raw)
    if text.startswith("+"):
        digits = text[1:]
    elif text.startswith("00"):
        digits = text[2:]
    elif text.startswith("0") and default_cc:
        digits = default_cc + text[1:]
    else:
        digits = text
    if not digits.isascii() or not digits.isdigit():
        raise BadNumber(f"'{raw}' is not a phone number: only digits, '+', spaces, dashes "
                      "and brackets are allowed")
    if not 8 <= len(digits) <= 15:
        raise BadNumber(f"'{raw}' is not a valid international number: it must have 8 to 15 "
                      f"digits, it has {len(digits)}")
    return digits


def recipients(to: str | None, default_cc: str) -> tuple[str, ...]:
    """Distinct normalised recipients of a comma/semicolon separated list, in order."""
    if not to or not to.strip():
        raise Invalid("'to' must not be empty")
    if "," not in to and ";" not in to:
        return (normalise_number(to.strip(), default_cc),)  # one recipient, the usual case
    seen: dict[str, None] = {}
    for item in _SEPARATORS.split(to):
        if item.strip():
            seen.setdefault(normalise_number(item.strip(), default_cc), None)
    if not seen:
        raise Invalid("'to' must list at least one phone number")
    return tuple(seen)


class Validator:
    """:func:`validate` for the messages of one request.

    What depends only on the channel or only on the content is worked out once per distinct
    value: the messages of a batch usually share both. Lives as long as one request.
    """

    def __init__(self, rules: Rules, allowed_channels: Collection[str] | None,
                 account: str = "", parent: str = "", senders: Senders | None = None) -> None:
        self._rules = rules
        self._allowed = allowed_channels
        self._senders = senders or Senders()  # the senders the caller may choose (none: none)
        self._checked_senders: dict[str, str] = {}  # sender -> why not ('' it may be used)
        self._account, self._parent = account, parent
        self._minute = -1  # the minute of the week routing reads, once per request
        # -> (name, "", its split mode) or ("", why, "udh8")
        self._channels: dict[str | None, tuple[str, str, SplitMode]] = {}
        self._texts: dict[tuple[str, SplitMode], TextInfo] = {}
        self._fingerprints: dict[tuple[str, str, str], str] = {}
        self._targets: dict[tuple[Routed, str], Target] = {}  # (decision, content) -> target

    def check(self, channel: str | None, to: str | None, content: str | None,
              cmid: str | None, sender: str | None = None) -> Valid:
        """Check one message; raises :class:`Invalid` with a client-facing reason."""
        if sender:
            self._check_sender(sender)
        sender = sender or ""
        if channel and channel.startswith(ROUTE_PREFIX):
            return self._routed(to, content, cmid, sender, channel[len(ROUTE_PREFIX):].strip())
        if self._rules.routes and not (channel and channel.strip()):
            return self._routed(to, content, cmid, sender)
        resolved = self._channels.get(channel)
        if resolved is None:
            resolved = self._channels[channel] = self._channel(channel)
        name, why, mode = resolved
        if why:
            raise Invalid(why)
        if cmid is not None and len(cmid) > 64:
            raise Invalid("'clientMessageId' must be at most 64 characters")
        if not content:
            raise Invalid("'content' must not be empty")
        info = self._texts.get((content, mode))
        if info is None:
            info = self._texts[content, mode] = analyse(content, mode)
        if info.segments > self._rules.max_segments:
            raise TooLong(f"'content' needs {info.segments} SMS segments ({info.encoding}); "
                          f"the limit is {self._rules.max_segments}")
        tos = recipients(to, self._rules.default_country_code)
        if self._rules.number_check == "libphonenumber":
            for number in tos:
                problem = number_problem(number)
                if problem:
                    raise BadNumber(problem)
        # The fingerprint only serves idempotency, which needs a clientMessageId.
        fp = self._fingerprint(name, content, sender) if cmid else ""
        return Valid(channel=name, recipients=tos, content=content, cmid=cmid or "",
                     encoding=info.encoding, segments=info.segments, fingerprint=fp,
                     sender=sender)

    def _check_sender(self, sender: str) -> None:
        """Raise :class:`BadSource` unless ``sender`` is one the caller may choose."""
        why = self._checked_senders.get(sender)
        if why is None:
            why = sender_problem(sender)
            if not why and not self._senders.matches(sender):
                why = f"sender '{sender}' is not allowed"
            self._checked_senders[sender] = why
        if why:
            raise BadSource(why)

    def _routed(self, to: str | None, content: str | None, cmid: str | None, sender: str,
                route: str = "") -> Valid:
        """A message that names no channel (or names its ``route``): each recipient is routed
        (or refused) alone."""
        if cmid is not None and len(cmid) > 64:
            raise Invalid("'clientMessageId' must be at most 64 characters")
        if not content:
            raise Invalid("'content' must not be empty")
        tos = recipients(to, self._rules.default_country_code)
        targets = tuple(self._target(number, content, sender, route) for number in tos)
        # Routing picks by weight, so a retry may be routed elsewhere: the fingerprint of a
        # routed message is its content's and the route it named, and a retry is still a
        # duplicate.
        fp = self._fingerprint(ROUTE_PREFIX + route if route else "", content,
                               sender) if cmid else ""
        first = next((t for t in targets if not t.refused), targets[0])
        return Valid(channel="", recipients=tos, content=content, cmid=cmid or "",
                     encoding=first.encoding, segments=first.segments, fingerprint=fp,
                     targets=targets, sender=sender)

    def _target(self, to: str, content: str, sender: str, route: str = "") -> Target:
        routes = self._rules.routes
        if self._minute < 0:  # a message that names its channel needs no clock
            self._minute = minute_of_week(time.time())
        got = (routes.choose_named(route, to, self._account, self._parent, minute=self._minute,
                                   rand=random.random(), allowed=self._allowed, sender=sender)
               if route else
               routes.choose(to, self._account, self._parent, minute=self._minute,
                             rand=random.random(), allowed=self._allowed, sender=sender))
        if not isinstance(got, Routed):
            return Target(refused=got.reason)
        if got.number_check == "libphonenumber":
            problem = number_problem(to)
            if problem:
                return Target(route=got.route, refused=problem)
        target = self._targets.get((got, content))
        if target is None:
            target = self._targets[got, content] = self._place(got, content)
        return target

    def _place(self, got: Routed, content: str) -> Target:
        """The target of a routing decision for ``content`` (the same for each recipient)."""
        mode = self._rules.channels[got.channel]
        info = self._texts.get((content, mode))
        if info is None:
            info = self._texts[content, mode] = analyse(content, mode)
        if info.segments > self._rules.max_segments:
            return Target(route=got.route, too_long=True, refused=(
                f"'content' needs {info.segments} SMS segments ({info.encoding}) on channel "
                f"'{got.channel}'; the limit is {self._rules.max_segments}"))
        return Target(channel=got.channel, route=got.route, chain=",".join(got.chain),
                      encoding=info.encoding, segments=info.segments)

    def _channel(self, channel: str | None) -> tuple[str, str, SplitMode]:
        name = (channel or "").strip() or self._rules.default_channel
        if not name:
            return "", "'channel' is required (no default channel is configured)", "udh8"
        mode = self._rules.channels.get(name)
        if mode is None:
            return "", f"channel '{name}' does not exist", "udh8"
        if self._allowed is not None and name not in self._allowed:
            return "", f"channel '{name}' is not allowed for this API key", "udh8"
        return name, "", mode

    def _fingerprint(self, name: str, content: str, sender: str) -> str:
        """What a retry with the same clientMessageId must repeat: the channel (or route)
        named, the content and the sender (a message without one keeps its old print)."""
        fp = self._fingerprints.get((name, content, sender))
        if fp is None:
            text = f"{name}\x00{content}" + (f"\x00{sender}" if sender else "")
            fp = hashlib.sha256(text.encode()).hexdigest()[:32]
            self._fingerprints[(name, content, sender)] = fp
        return fp
