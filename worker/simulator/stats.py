"""Counters of one simulator run, readable in-process and dumpable as JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.smpp.pdu import status_name


@dataclass(slots=True)
class SimStats:
    """Mutable counters; only the simulator's own event loop touches them."""

    connections: int = 0
    binds: Counter[str] = field(default_factory=Counter)  # bind type -> successful binds
    bind_failures: Counter[str] = field(default_factory=Counter)  # status name -> count
    unbinds: int = 0
    submits: int = 0
    responses: Counter[str] = field(default_factory=Counter)  # submit_sm_resp status -> count
    generic_nacks: int = 0
    unanswered: int = 0
    enquire_links: int = 0
    receipts_sent: int = 0
    receipts_acked: int = 0
    receipts_resent: int = 0
    drops: int = 0

    def count_response(self, status: int) -> None:
        """Count one submit_sm_resp by status name."""
        self.responses[status_name(status)] += 1

    def as_dict(self, receipts_pending: int) -> dict[str, Any]:
        """A JSON-ready snapshot."""
        return {
            "connections": self.connections,
            "binds": dict(self.binds),
            "bind_failures": dict(self.bind_failures),
            "unbinds": self.unbinds,
            "submits": self.submits,
            "responses": dict(self.responses),
            "generic_nacks": self.generic_nacks,
            "unanswered": self.unanswered,
            "enquire_links": self.enquire_links,
            "receipts_sent": self.receipts_sent,
            "receipts_acked": self.receipts_acked,
            "receipts_resent": self.receipts_resent,
            "receipts_pending": receipts_pending,
            "drops": self.drops,
        }


def write_stats_file(path: str, snapshot: dict[str, Any]) -> None:
    """Write a snapshot atomically (readers never see half a file)."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(snapshot, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(target)
