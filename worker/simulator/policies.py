"""How the simulator answers a submit_sm: one small class per SMSC behaviour, checked in order.

The first policy that returns a Verdict wins; when none does, the message is accepted. This is
the shape of Jasmin's test simulators (happy, error on submit, no response...) without a class
hierarchy: each policy is a plain object with `check`.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from worker.simulator.config import SimulatorConfig
from worker.smpp.pdu import ESME_RMSGQFUL, ESME_ROK, ESME_RTHROTTLED


class Outcome(enum.Enum):
    """What kind of answer a submit_sm gets."""

    ACCEPT = "accept"  # submit_sm_resp ESME_ROK with a message_id
    REJECT = "reject"  # submit_sm_resp with an error status, no message_id
    NACK = "nack"  # generic_nack
    SILENT = "silent"  # no answer at all


@dataclass(frozen=True, slots=True)
class Verdict:
    """An outcome plus the command_status it carries."""

    outcome: Outcome
    status: int


ACCEPTED = Verdict(Outcome.ACCEPT, ESME_ROK)


class SubmitPolicy(Protocol):
    """One behaviour: a Verdict when it applies to this submit_sm, else None."""

    def check(self, destination: str, outstanding: int) -> Verdict | None:
        """Judge one submit_sm (`outstanding` = unanswered submit_sm on its bind)."""


class NeverAnswer:
    """Swallows every submit_sm: the ESME's response timeout path."""

    def check(self, destination: str, outstanding: int) -> Verdict | None:
        """Always silent."""
        return Verdict(Outcome.SILENT, ESME_ROK)


class WindowLimit:
    """More than `window` unanswered submit_sm on one bind -> ESME_RMSGQFUL."""

    def __init__(self, window: int) -> None:
        self._window = window

    def check(self, destination: str, outstanding: int) -> Verdict | None:
        """Reject when the bind's window is already full."""
        if outstanding >= self._window:
            return Verdict(Outcome.REJECT, ESME_RMSGQFUL)
        return None


class TpsLimit:
    """A token bucket of `max_tps` per second (one second of burst) -> ESME_RTHROTTLED beyond."""

    def __init__(self, max_tps: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = max_tps
        self._capacity = max(1.0, max_tps)
        self._tokens = self._capacity
        self._clock = clock
        self._last = clock()

    def check(self, destination: str, outstanding: int) -> Verdict | None:
        """Spend a token, or throttle when none is left."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return Verdict(Outcome.REJECT, ESME_RTHROTTLED)
        self._tokens -= 1.0
        return None


class NackByRate:
    """A share of submit_sm answered with generic_nack."""

    def __init__(self, rng: random.Random, rate: float, status: int) -> None:
        self._rng = rng
        self._rate = rate
        self._verdict = Verdict(Outcome.NACK, status)

    def check(self, destination: str, outstanding: int) -> Verdict | None:
        """Nack with probability `rate`."""
        return self._verdict if self._rng.random() < self._rate else None


class ErrorByPrefix:
    """Destinations starting with a configured prefix get that prefix's status (longest wins)."""

    def __init__(self, prefixes: Mapping[str, int]) -> None:
        self._prefixes = sorted(prefixes.items(), key=lambda item: -len(item[0]))

    def check(self, destination: str, outstanding: int) -> Verdict | None:
        """Reject when the destination matches a prefix."""
        for prefix, status in self._prefixes:
            if destination.startswith(prefix):
                return Verdict(Outcome.REJECT, status)
        return None


class ErrorByRate:
    """Each configured status is returned with its own probability (one draw per submit_sm)."""

    def __init__(self, rng: random.Random, rates: Mapping[int, float]) -> None:
        self._rng = rng
        self._rates = sorted(rates.items())

    def check(self, destination: str, outstanding: int) -> Verdict | None:
        """Reject with the status whose slice of [0, 1) the draw falls in."""
        draw = self._rng.random()
        for status, rate in self._rates:
            if draw < rate:
                return Verdict(Outcome.REJECT, status)
            draw -= rate
        return None


def build_policies(config: SimulatorConfig, rng: random.Random) -> tuple[SubmitPolicy, ...]:
    """The policies `config` asks for, in the order they are checked."""
    policies: list[SubmitPolicy] = []
    if config.no_answer:
        policies.append(NeverAnswer())
    if config.window is not None:
        policies.append(WindowLimit(config.window))
    if config.max_tps is not None:
        policies.append(TpsLimit(config.max_tps))
    if config.nack_rate > 0:
        policies.append(NackByRate(rng, config.nack_rate, config.nack_status))
    if config.error_prefixes:
        policies.append(ErrorByPrefix(config.error_prefixes))
    if config.error_rates:
        policies.append(ErrorByRate(rng, config.error_rates))
    return tuple(policies)


def judge(policies: Sequence[SubmitPolicy], destination: str, outstanding: int) -> Verdict:
    """The first applicable policy's verdict, else ACCEPTED."""
    for policy in policies:
        verdict = policy.check(destination, outstanding)
        if verdict is not None:
            return verdict
    return ACCEPTED
