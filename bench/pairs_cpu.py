"""Where the CPU goes in one smsgw run of a side-by-side scenario (``../shared/peers``).

pairs.sh gives the ratio to Kannel; this runs the smsgw half of one scenario exactly as pairs.sh
does (``smsc.sh start``, ``ours.sh start CHECKOUT``, the same ``load.py`` arguments) and prints
one JSON line: load.py's rates and the CPU (user + system, from ``/proc``, children included)
each process spent per message over the load, so a ratio can be read as microseconds:

    .venv/bin/python bench/pairs_cpu.py s4          # 20,000 messages in 100-recipient requests
    .venv/bin/python bench/pairs_cpu.py s2 --peers ../shared/peers --checkout .

Needs pairs.sh's setup (``setup.sh``: the simulator's node modules and load.py's venv under
``$PEERS_HOME``, /tmp/smsgw-peers) and a quiet machine; 127.0.0.1 only, bounded by load.py's
own stall and idle limits.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _stack as st  # a sibling module, not a package

HOME = Path(os.environ.get("PEERS_HOME", "/tmp/smsgw-peers"))
RUN = HOME / "run"
# pairs.sh's load.py arguments per scenario, and the processes ours.sh starts (by pid file).
SCENARIOS = {
    "s1": ["-n", "10000", "-c", "50", "--dlr-sink", "18080"],
    "s2": ["-n", "10000", "-c", "50"],
    "s3": ["-n", "10000", "-c", "10", "-b", "100", "--dlr-sink", "18080"],
    "s4": ["-n", "20000", "-c", "10", "-b", "100"],
}
PROCESSES = ("redis", "gateway", "worker1", "webhooks", "smsc")


def _seconds(pid: int) -> float:
    """CPU seconds of a process and of its children (a gateway's processes, say)."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            total += st.cpu_seconds(p)
        except FileNotFoundError:
            continue
    return total


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _cpu() -> dict[str, float]:
    return {name: _seconds(int((RUN / f"{name}.pid").read_text())) for name in PROCESSES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--peers", type=Path, default=Path("../shared/peers"))
    parser.add_argument("--checkout", type=Path, default=Path("."))
    parser.add_argument("--out", type=Path, default=Path("/tmp/pairs_cpu.jsonl"))
    args = parser.parse_args()
    peers = args.peers.resolve()
    subprocess.run([peers / "smsc.sh", "start"], check=True, stdout=subprocess.DEVNULL)
    try:
        subprocess.run([peers / "ours.sh", "start", args.checkout.resolve()], check=True,
                       stdout=subprocess.DEVNULL)
        print(json.dumps(_measure(peers, args.scenario, args.out)))
    finally:
        subprocess.run([peers / "ours.sh", "stop"], check=False)
        subprocess.run([peers / "smsc.sh", "stop"], check=False)


def _measure(peers: Path, scenario: str, out: Path) -> dict[str, object]:
    key = (RUN / "key").read_text().strip()
    load = [str(HOME / "venv/bin/python"), str(peers / "load.py"), "--dialect", "ours",
            "--url", "http://127.0.0.1:8090", "--auth-header", f"Authorization: Bearer {key}",
            "--channel", "bench", "--watch-dir", str(RUN), "--watch", f"smsc=@{RUN}/smsc.pid",
            "--wait-idle", "25", "--stall", "60", "--out", str(out),
            *SCENARIOS[scenario], "--label", f"ours {scenario}"]
    before, own = _cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(load, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after, done = _cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    n = int(SCENARIOS[scenario][1])
    per = {k: round((after[k] - before[k]) * 1e6 / n, 1) for k in PROCESSES}
    per["load generator"] = round(
        (done.ru_utime + done.ru_stime - own.ru_utime - own.ru_stime) * 1e6 / n, 1)
    result = json.loads(out.read_text().splitlines()[-1])
    rates = {k: v for k, v in result.items() if k.endswith("_rate")}
    return {"scenario": scenario, **rates, "cpu_us_per_message": per}


if __name__ == "__main__":
    main()
