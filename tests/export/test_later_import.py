"""Lists saved before a later import of users (a new generation) are matched again in
bulk by that import, once, as separate processes run them: `users import` in one,
`export` in another, for a names-only job (matched at save, then stale) and a Bluesky
job imported by handle (off the fast path); the export then reads every list as matched.
On BigQuery the export's one query matches every list against the users it holds."""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.conftest import cli
from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.models import FriendList, Status
from friendscrape.stores import open_store
from storefixtures import bq_settings

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

# (platform, users imported first, users imported later, the first user's friends as
# (name, upstream id; "" for names only))
JOBS = {
    "twitter-mobile": (
        [("1", "ada"), ("2", "bob")],
        [("3", "cy"), ("4", "Dee")],
        [("bob", ""), ("someone", ""), ("CY", ""), ("dee", "")],
    ),
    "bluesky": (
        [("ada.bsky.social", "ada.bsky.social"), ("bob.bsky.social", "bob.bsky.social")],
        [("cy.example", "cy.example"), ("Dee.bsky.social", "Dee.bsky.social")],
        [
            ("bob.bsky.social", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"),
            ("someone.bsky.social", "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"),
            ("CY.example", "did:web:cy.example"),
            ("dee.bsky.social", "did:plc:dddddddddddddddddddddddd"),
        ],
    ),
}


def _csv(path: Path, users: list[tuple[str, str]]) -> Path:
    path.write_text("user_id,screen_name\n" + "".join(f"{u},{n}\n" for u, n in users))
    return path


@dataclass(frozen=True)
class Job:
    url: str
    settings: Settings
    env: dict[str, str]
    db: Path | None  # the SQLite store's file


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        db = tmp_path / "job.db"
        url = f"sqlite:///{db}"
        return Job(url, Settings(store=url), {}, db)
    emulator = request.getfixturevalue("bq_emulator")
    settings = bq_settings(emulator.endpoint, request.getfixturevalue("bq_dataset"))
    return Job(
        settings.store, settings, {"FRIENDSCRAPE_BIGQUERY_ENDPOINT": emulator.endpoint}, None
    )


async def _save(job: Job, platform: str, friends: list[tuple[str, str]]) -> None:
    """The first user's list, saved as a run saves it (after the plan)."""
    store = open_store(store_config(job.settings))
    await store.open()
    try:
        await store.plan_partitions(1)
        ids = tuple(uid for _, uid in friends) if platform != "twitter-mobile" else ()
        await store.save(
            [
                FriendList(
                    user_id=JOBS[platform][0][0][0],
                    screen_name=JOBS[platform][0][0][1],
                    status=Status.OK,
                    source=platform,
                    partition=1,
                    start_at=T0,
                    end_at=T0,
                    friend_names=tuple(name for name, _ in friends),
                    friend_ids=ids,
                    following_count=len(friends),
                    truncated=False,
                )
            ]
        )
    finally:
        await store.close()


def _stale(db: Path) -> int:
    """Lists not stored with their keys at the current generation."""
    conn = sqlite3.connect(db)
    try:
        (gen,) = conn.execute("SELECT generation FROM key_generation").fetchone()
        found = conn.execute(
            "SELECT count(*) FROM user_friends WHERE keys_gen <> ? OR friend_keys IS NULL",
            (gen,),
        ).fetchone()
        return int(found[0])
    finally:
        conn.close()


def _targets(job: Job, cwd: Path) -> list[str]:
    result = cli("export", "--store", job.url, "--format", "edges", cwd=cwd, env=job.env)
    assert result.code == 0, result.err
    return [row["target_id"] for row in csv.DictReader(io.StringIO(result.out))]


@pytest.mark.parametrize("platform", list(JOBS))
def test_lists_saved_before_a_later_import_are_matched_by_the_next_export(
    tmp_path: Path, platform: str, job: Job
) -> None:
    first, later, friends = JOBS[platform]
    done = cli(
        "users",
        "import",
        str(_csv(tmp_path / "first.csv", first)),
        "--store",
        job.url,
        "--source",
        platform,
        cwd=tmp_path,
        env=job.env,
    )
    assert done.code == 0, done.err
    asyncio.run(_save(job, platform, friends))
    outside = [uid or f"name:{name}" for name, uid in friends]
    assert _targets(job, tmp_path) == [first[1][0], *outside[1:]]
    done = cli(
        "users",
        "import",
        str(_csv(tmp_path / "later.csv", later)),
        "--store",
        job.url,
        cwd=tmp_path,
        env=job.env,
    )
    assert done.code == 0, done.err
    if job.db is not None:
        # Matched again by the import itself: stored at the new generation.
        assert _stale(job.db) == 0
    # The new generation's users, matched by name ignoring case (by handle on Bluesky).
    assert _targets(job, tmp_path) == [first[1][0], outside[1], later[0][0], later[1][0]]
