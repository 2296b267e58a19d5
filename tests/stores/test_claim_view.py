"""What a claim reads on SQLite (issue 24): the leases, then the pending partitions, so a
partition whose holder ends it between the two reads is no longer pending, not pending
with no lease (free: claimed for nothing). BigQuery reads both in one query."""

from __future__ import annotations

from pathlib import Path

import pytest

from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.core.claim import _free
from friendscrape.simulator import SimConfig
from friendscrape.stores import opened_store
from friendscrape.stores.base import Lease, LeaseHolder
from reliability.harness import clean_env, run_cli, start_simulator

pytestmark = pytest.mark.slow

CONFIG = SimConfig(users=8, mean_friends=20.0, latency=0.01)


async def test_a_partition_ended_between_the_claims_reads_is_not_free(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'job.db'}"
    env = clean_env()
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,screen_name\n"
        + "".join(f"{a.user_id},{a.screen_name}\n" for a in CONFIG.make_graph().accounts()),
        encoding="utf-8",
    )
    for step in (("users", "import", str(users)), ("partitions", "plan", "--count", "2")):
        code, done = await run_cli([*step, "--store", url], env=env)
        assert code == 0, done.tail()
    sim = start_simulator(CONFIG)
    try:
        async with opened_store(store_config(Settings(store=url))) as store:
            holder = Lease(partition=1, run_id="holder", ttl=60.0)
            await store.acquire_lease(holder)
            reads: list[str] = []

            async def holder_ends_partition_1() -> None:
                """Partition 1's holder ends it: the last of its users collected (by a
                numbered run, once the holder has let go), its lease released."""
                await store.release_lease(holder)
                args = ["run", "--store", url, "--partition", "1", "--source", "twitter-mobile"]
                code, ran = await run_cli([*args, "--base-url", sim.base_url], env=env)
                assert code == 0, ran.tail()

            real_leases, real_pending = store.leases, store.pending_partitions

            async def leases() -> dict[int, LeaseHolder]:
                found = await real_leases()
                reads.append("leases")
                if len(reads) == 1:
                    await holder_ends_partition_1()
                return found

            async def pending_partitions(*, retry_failed: bool) -> list[int]:
                found = await real_pending(retry_failed=retry_failed)
                reads.append("pending")
                if len(reads) == 1:
                    await holder_ends_partition_1()
                return found

            store.leases = leases  # type: ignore[method-assign]
            store.pending_partitions = pending_partitions  # type: ignore[method-assign]
            pending, held = await store.claim_view(retry_failed=False)
    finally:
        sim.stop()
    assert sorted(reads) == ["leases", "pending"], reads
    assert _free(pending, held, "me", frozenset()) == [2], (pending, held)
