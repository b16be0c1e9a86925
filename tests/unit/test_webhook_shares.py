"""Sharing an account's shards between webhooks processes: pure arithmetic."""

from __future__ import annotations

from worker.webhook_shares import Moves, fair_share, rebalance


def test_a_fair_share_is_every_shard_shared_out_rounded_up() -> None:
    assert [fair_share(8, live) for live in (0, 1, 2, 3, 8, 9)] == [8, 8, 4, 3, 1, 1]


def test_a_process_over_its_share_gives_its_highest_shards_back() -> None:
    assert rebalance(active=range(8), leaving=(), share=4) == Moves(give=(4, 5, 6, 7), resume=(),
                                                                    take=0)


def test_a_process_under_its_share_resumes_what_it_was_giving_before_taking_more() -> None:
    assert rebalance(active=(0, 1), leaving=(6, 7), share=3) == Moves(give=(), resume=(6,),
                                                                      take=0)
    assert rebalance(active=(0, 1), leaving=(7,), share=4) == Moves(give=(), resume=(7,), take=1)
    assert rebalance(active=(), leaving=(), share=8) == Moves(give=(), resume=(), take=8)


def test_a_process_at_its_share_changes_nothing() -> None:
    assert rebalance(active=(0, 1, 2, 3), leaving=(5,), share=4) == Moves(give=(), resume=(),
                                                                          take=0)
