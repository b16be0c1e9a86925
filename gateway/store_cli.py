"""``smsgw store migrate``: the store's keys renamed to their hash-tagged names (see
worker/store/migrate.py). Exit status: 0 done, 1 some old keys left (their new name exists).
"""

from __future__ import annotations

import argparse
import sys

from worker.config import Settings
from worker.redisconn import redis_client
from worker.store.migrate import migrate


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The ``store`` subcommand and its own subcommands."""
    store = sub.add_parser("store", help="the Redis store's data")
    ssub = store.add_subparsers(dest="store_command", required=True)
    ssub.add_parser("migrate", help="rename the keys of a store written before hash tags "
                    "(run with every gateway, worker and webhooks process stopped)")


async def run_store(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``store`` subcommand."""
    redis = redis_client(settings.redis_url)
    try:
        done = await migrate(redis)
    finally:
        await redis.aclose()
    print(f"smsgw store migrate: renamed {done.renamed} keys, copied the callback settings "
          f"of {done.copied} accounts and {done.copied_mo} entries of MO lookups",
          file=sys.stderr)
    if done.conflicts:
        print("smsgw store migrate: left, their new name exists (compare them and delete "
              "one): " + " ".join(done.conflicts), file=sys.stderr)
        return 1
    return 0
