"""BigQuery aborts a mutating statement that collides with another on the same table
("Could not serialize access to table ... due to concurrent update"); the local server
never does, so a worker process is started with the abort injected into its client: the
claim, the heartbeat and the run samples each meet it and are made again (issue 24)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bqemu import Emulator
from friendscrape.simulator import SimConfig
from reliability.harness import CliRun, SimProcess, clean_env, run_cli, start_simulator

pytestmark = [pytest.mark.slow, pytest.mark.bigquery]

USERS = 20

# Run as ``python INJECT LOG ARGS...``: the first two statements of each kind fail with
# BigQuery's abort (as the job's result would), then the CLI runs as usual.
INJECT = """
import json, runpy, sys
from google.api_core import exceptions
from google.cloud import bigquery

log_path = sys.argv.pop(1)
left = {"claim": 2, "heartbeat": 2, "sample": 2}
kinds = {
    "claim": ("MERGE", "partition_leases"),
    "heartbeat": ("UPDATE", "partition_leases"),
    "sample": ("INSERT INTO", "run_samples"),
}
query = bigquery.Client.query

def aborting(self, sql, *args, **kwargs):
    for kind, (verb, table) in kinds.items():
        if left[kind] and sql.lstrip().startswith(verb) and table in sql.split("(")[0]:
            left[kind] -= 1
            with open(log_path, "a") as out:
                out.write(json.dumps(kind) + "\\n")
            raise exceptions.BadRequest(
                f"Could not serialize access to table test-project:x.{table} due to "
                "concurrent update"
            )
    return query(self, sql, *args, **kwargs)

bigquery.Client.query = aborting
sys.argv[0] = "friendscrape"
runpy.run_module("friendscrape.cli", run_name="__main__")
"""


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    sim = start_simulator(SimConfig(users=USERS, mean_friends=20.0, latency=0.05))
    try:
        yield sim
    finally:
        sim.stop()


async def test_aborted_claims_heartbeats_and_samples_are_made_again(
    tmp_path: Path, bq_emulator: Emulator, bq_dataset: str, sim: SimProcess
) -> None:
    env = clean_env(
        FRIENDSCRAPE_BIGQUERY_ENDPOINT=bq_emulator.endpoint,
        FRIENDSCRAPE_BIGQUERY_WRITE_API="insert_all",
        FRIENDSCRAPE_STORE=f"bigquery://test-project/{bq_dataset}",
        FRIENDSCRAPE_LEASE_TTL="30",
        FRIENDSCRAPE_LEASE_HEARTBEAT="1",
        FRIENDSCRAPE_WRITE_TIMEOUT="30",
    )
    users = tmp_path / "users.csv"
    accounts = SimConfig(users=USERS, mean_friends=20.0).make_graph().accounts()
    users.write_text(
        "user_id,screen_name\n" + "".join(f"{a.user_id},{a.screen_name}\n" for a in accounts),
        encoding="utf-8",
    )
    for args in (
        ["users", "import", str(users), "--source", "twitter-mobile"],
        ["partitions", "plan", "--count", "1"],
    ):
        code, done = await run_cli(args, env=env, timeout=120)
        assert code == 0, done.tail()

    inject = tmp_path / "inject.py"
    inject.write_text(INJECT, encoding="utf-8")
    injected = tmp_path / "injected.jsonl"
    # Slow enough (one user at a time) for heartbeats and samples to come due.
    args = ["run", "--partition", "next", "--base-url", sim.base_url, "--concurrency", "1"]
    code, worker = await _run_injected(inject, injected, args, env)
    assert code == 0, worker.tail()
    kinds = [json.loads(line) for line in injected.read_text().splitlines()]
    assert sorted(kinds) == ["claim"] * 2 + ["heartbeat"] * 2 + ["sample"] * 2, kinds

    retried_claims = worker.named("lease.retry")
    assert len(retried_claims) == 2, worker.tail()
    assert "concurrent update" in retried_claims[0]["error"]
    assert len(worker.named("lease.heartbeat_failed")) == 2
    assert not worker.named("lease.lost")
    assert len(worker.named("samples.retry")) == 2
    assert not worker.named("samples.write_failed")
    assert [e["users"] for e in worker.named("partition.complete")] == [USERS]


async def _run_injected(
    inject: Path, injected: Path, args: list[str], env: dict[str, str]
) -> tuple[int, CliRun]:
    import asyncio  # noqa: PLC0415

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(inject),
        str(injected),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        limit=16 * 1024 * 1024,
    )
    run = CliRun(process)
    run._readers = [
        asyncio.create_task(run._read_stdout()),
        asyncio.create_task(run._read_stderr()),
    ]
    return await run.wait(180), run
