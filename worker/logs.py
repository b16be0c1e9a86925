"""Structured logs for every smsgw process: JSON or console lines, message context, redaction.

- ``message_context(api_id, channel)`` puts the apiMessageId and channel on every line logged
  inside it (contextvars, so each asyncio task keeps its own).
- Message content is logged only through :data:`CONTENT_LOGGER`, at DEBUG: it never shows at
  the default level.
- :class:`Redactor` is a second line of defence: API keys, Authorization values, ``password=``
  style pairs and the configured secrets (SMPP passwords, bootstrap key) are masked in every
  line, tracebacks included, whatever the code that logged them meant to do.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Literal, TextIO

from worker.config import Settings

LogFormat = Literal["json", "console"]
LOG_FORMATS: tuple[LogFormat, ...] = ("json", "console")
CONTENT_LOGGER = "smsgw.content"  # the only logger that may carry message content, at DEBUG
MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter configured secrets would mask ordinary words

_API_ID: ContextVar[str] = ContextVar("smsgw_log_api_message_id", default="")
_CHANNEL: ContextVar[str] = ContextVar("smsgw_log_channel", default="")

# Each pattern with the substrings (of the lower-cased text) that any match of it contains:
# a line holding none of them skips the regular expression. Most lines hold none, and the
# four searches cost ~40 us per line on this VM (an access-log line per request).
_PATTERNS = (
    # our API keys (gateway.auth.new_secret): "sk_" and 32 URL-safe characters
    (("sk_",), re.compile(r"\bsk_[A-Za-z0-9_\-]{8,}"), "sk_" + MASK),
    (("bearer", "basic"),
     re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9_\-+/=.~]{6,}"), r"\1\2" + MASK),
    (("password", "passwd", "pwd", "secret", "apikey", "api_key", "api-key", "token"),
     re.compile(r"(?i)\b(password|passwd|pwd|secret|api[_-]?key|token)(['\"]?\s*[:=]\s*['\"]?)"
                r"[^\s'\",;&}]+"), r"\1\2" + MASK),
    # credentials inside URLs: redis://user:pass@host
    (("://",), re.compile(r"(\w+://[^/\s:@]*:)[^@\s/]+@"), r"\1" + MASK + "@"),
)


class message_context:  # lower case: used like a function; a class is cheaper than a generator
    """``with message_context(api_id, channel):`` log lines inside carry ``apiMessageId`` and
    ``channel``; the previous values come back on exit."""

    __slots__ = ("_api", "_api_id", "_chan", "_channel")

    def __init__(self, api_id: str = "", channel: str = "") -> None:
        self._api_id, self._channel = api_id, channel
        self._api: Token[str] | None = None
        self._chan: Token[str] | None = None

    def __enter__(self) -> None:
        if self._api_id:
            self._api = _API_ID.set(self._api_id)
        if self._channel:
            self._chan = _CHANNEL.set(self._channel)

    def __exit__(self, *exc_info: object) -> None:
        if self._chan is not None:
            _CHANNEL.reset(self._chan)
        if self._api is not None:
            _API_ID.reset(self._api)


class ContextFilter(logging.Filter):
    """Adds ``apiMessageId`` and ``channel`` to each record (an explicit ``extra`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "apiMessageId", ""):
            record.apiMessageId = _API_ID.get()
        if not getattr(record, "channel", ""):
            record.channel = _CHANNEL.get()
        return True


class Redactor(logging.Filter):
    """Masks secrets in the rendered message and traceback of every record it passes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._literals: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Also mask these exact strings (configured passwords and keys)."""
        fresh = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH} - set(self._literals)
        # Longest first, so a secret containing another is masked whole.
        self._literals = sorted({*self._literals, *fresh}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """``text`` with every known kind of secret masked."""
        for literal in self._literals:
            text = text.replace(literal, MASK)
        # ASCII text: a case-insensitive match is a lower-case substring. Other text (where
        # Unicode case folding could match more) goes through every pattern.
        lower = text.lower() if text.isascii() else None
        for triggers, pattern, replacement in _PATTERNS:
            if lower is None or any(t in lower for t in triggers):
                text = pattern.sub(replacement, text)
                lower = text.lower() if text.isascii() else None
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format call: logging reports it when emitting
            return True
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, apiMessageId, channel, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, str] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("apiMessageId", "channel"):
            value = getattr(record, key, "")
            if value:
                out[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """Human-readable lines, with the message context in brackets when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(context)s%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = [f"{key}={value}" for key in ("apiMessageId", "channel")
                 if (value := getattr(record, key, ""))]
        record.context = f"[{' '.join(parts)}] " if parts else ""
        return super().format(record)


def config_secrets(settings: Settings) -> list[str]:
    """The secrets a configuration holds: SMPP passwords, the bootstrap admin key and the
    metrics token."""
    found = [ch.password for ch in settings.channels.values()]
    found += [settings.gateway.admin_bootstrap_key, settings.gateway.metrics_token]
    return [s for s in found if s]


def setup_logging(
    level: str, fmt: LogFormat, *, secrets: Iterable[str] = (), stream: TextIO | None = None
) -> tuple[logging.Handler, Redactor]:
    """Send every log line to ``stream`` (stderr) in ``fmt``; returns the handler and its
    redactor (add secrets to it once the configuration is read)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    redactor = Redactor(secrets)
    handler.addFilter(ContextFilter())
    handler.addFilter(redactor)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler, redactor
