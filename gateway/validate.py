"""Per-message validation: pure functions from wire values to store-ready messages or reasons."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass

from worker.encoding import analyse

_SEPARATORS = re.compile(r"[,;]")
_FORMATTING = re.compile(r"[\s\-().]")


@dataclass(frozen=True, slots=True)
class Rules:
    """Limits that apply to every message."""

    default_channel: str
    default_country_code: str
    max_segments: int
    channels: Collection[str]


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


class Invalid(Exception):
    """Why a message was not accepted (the text goes to the client as ``error``)."""


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
        raise Invalid(f"'{raw}' is not a phone number: only digits, '+', spaces, dashes "
                      "and brackets are allowed")
    if not 8 <= len(digits) <= 15:
        raise Invalid(f"'{raw}' is not a valid international number: it must have 8 to 15 "
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


def validate(
    channel: str | None,
    to: str | None,
    content: str | None,
    cmid: str | None,
    rules: Rules,
    allowed_channels: Collection[str] | None,
) -> Valid:
    """Check one message; raises :class:`Invalid` with a client-facing reason."""
    name = (channel or "").strip() or rules.default_channel
    if not name:
        raise Invalid("'channel' is required (no default channel is configured)")
    if name not in rules.channels:
        raise Invalid(f"channel '{name}' does not exist")
    if allowed_channels is not None and name not in allowed_channels:
        raise Invalid(f"channel '{name}' is not allowed for this API key")
    if cmid is not None and len(cmid) > 64:
        raise Invalid("'clientMessageId' must be at most 64 characters")
    if not content:
        raise Invalid("'content' must not be empty")
    info = analyse(content)
    if info.segments > rules.max_segments:
        raise Invalid(f"'content' needs {info.segments} SMS segments ({info.encoding}); "
                      f"the limit is {rules.max_segments}")
    tos = recipients(to, rules.default_country_code)
    # The fingerprint only serves idempotency, which needs a clientMessageId.
    fp = hashlib.sha256(f"{name}\x00{content}".encode()).hexdigest()[:32] if cmid else ""
    return Valid(channel=name, recipients=tos, content=content, cmid=cmid or "",
                 encoding=info.encoding, segments=info.segments, fingerprint=fp)
