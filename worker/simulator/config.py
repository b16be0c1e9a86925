"""SimulatorConfig: every behaviour of the SMSC simulator, as one frozen value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from worker.smpp.pdu import ESME_RSYSERR

IdFormat = Literal["hex", "dec"]

# Receipt `stat:` names and the message_state TLV value each one carries (SMPP 3.4 §5.2.28).
MESSAGE_STATES: Mapping[str, int] = MappingProxyType(
    {"DELIVRD": 2, "EXPIRED": 3, "UNDELIV": 5, "REJECTD": 8}
)


def _frozen(mapping: Mapping[str, float]) -> Mapping[str, float]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """How the simulated SMSC behaves. Delays are in seconds; rates are probabilities 0..1."""

    accounts: Mapping[str, str] = field(default_factory=dict)  # system_id -> password
    system_id: str = "smsc-sim"  # returned in bind responses
    ack_delay: float = 0.0  # before submit_sm_resp
    receipt_delay: float = 0.0  # after submit_sm_resp, before the deliver_sm receipt
    receipt_states: Mapping[str, float] = field(default_factory=lambda: _frozen({"DELIVRD": 1}))
    error_rates: Mapping[int, float] = field(default_factory=dict)  # status -> probability
    error_prefixes: Mapping[str, int] = field(default_factory=dict)  # dest prefix -> status
    nack_rate: float = 0.0  # share of submit_sm answered with generic_nack
    nack_status: int = ESME_RSYSERR  # command_status of those generic_nacks
    max_tps: float | None = None  # beyond it (simulator-wide) -> ESME_RTHROTTLED
    window: int | None = None  # outstanding submit_sm per bind beyond it -> ESME_RMSGQFUL
    drop_after: int | None = None  # close a connection when it has sent this many PDUs
    no_answer: bool = False  # never answer submit_sm
    id_format: IdFormat = "hex"  # message_id in submit_sm_resp
    receipt_id_format: IdFormat | None = None  # id in receipts; None = same as id_format
    date_digits: Literal[10, 12] = 10  # YYMMDDhhmm or YYMMDDhhmmss in receipt text
    receipt_before_response: bool = False  # write the deliver_sm before the submit_sm_resp
    log_path: str | None = None  # JSON lines, one per submit_sm
    stats_path: str | None = None  # counters as JSON, written on demand and at stop
    seed: int = 0  # of the random.Random behind every rate, so runs are reproducible
    id_start: int | None = None  # first message id number; None derives it from the clock
    max_records: int = 1_000_000  # SubmitRecords kept in memory (oldest dropped first)

    def __post_init__(self) -> None:
        unknown = set(self.receipt_states) - set(MESSAGE_STATES)
        if unknown:
            raise ValueError(
                f"unknown receipt states {sorted(unknown)}; use {list(MESSAGE_STATES)}"
            )
        if not self.receipt_states or sum(self.receipt_states.values()) <= 0:
            raise ValueError("receipt_states needs at least one positive weight")
        if sum(self.error_rates.values()) > 1 or any(r < 0 for r in self.error_rates.values()):
            raise ValueError("error rates must be >= 0 and sum to at most 1")
        if not 0 <= self.nack_rate <= 1:
            raise ValueError("nack_rate must be within 0..1")
        if self.window is not None and self.window < 1:
            raise ValueError("window must be at least 1")
        if self.max_tps is not None and self.max_tps <= 0:
            raise ValueError("max_tps must be positive")

    @property
    def effective_receipt_id_format(self) -> IdFormat:
        """The id format used in receipts."""
        return self.receipt_id_format or self.id_format
