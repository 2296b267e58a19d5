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
    await _save_lists(job, platform, [friends])


async def _save_lists(job: Job, platform: str, lists: list[list[tuple[str, str]]]) -> None:
    """The first users' lists (the first user's first), saved as a run saves them."""
    store = open_store(store_config(job.settings))
    await store.open()
    try:
        await store.plan_partitions(1)
        await store.save(
            [
                FriendList(
                    user_id=JOBS[platform][0][i][0],
                    screen_name=JOBS[platform][0][i][1],
                    status=Status.OK,
                    source=platform,
                    partition=1,
                    start_at=T0,
                    end_at=T0,
                    friend_names=tuple(name for name, _ in friends),
                    friend_ids=tuple(uid for _, uid in friends)
                    if platform != "twitter-mobile"
                    else (),
                    following_count=len(friends),
                    truncated=False,
                )
                for i, friends in enumerate(lists)
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


LOG = {"FRIENDSCRAPE_LOG_FORMAT": "console", "FRIENDSCRAPE_LOG_LEVEL": "info"}


def _keys(db: Path) -> dict[str, tuple[bytes, int]]:
    conn = sqlite3.connect(db)
    try:
        found = conn.execute("SELECT user_id, friend_keys, keys_gen FROM user_friends")
        return {u: (k, g) for u, k, g in found}
    finally:
        conn.close()


@pytest.mark.parametrize("platform", list(JOBS))
def test_an_import_matches_again_only_the_lists_naming_users_it_added_or_renamed(
    tmp_path: Path, platform: str, job: Job
) -> None:
    first, later, friends = JOBS[platform]
    done = cli(
        "users", "import", str(_csv(tmp_path / "first.csv", first)),
        "--store", job.url, "--source", platform, cwd=tmp_path, env=job.env,
    )  # fmt: skip
    assert done.code == 0, done.err
    # The first user's list names the users imported later; the second user's does not.
    asyncio.run(_save_lists(job, platform, [friends, friends[:2]]))
    # An import that changes no key (a following count only) starts no generation; it
    # matches what no save has matched yet (Bluesky lists saved before the filter).
    gen = _generation(job.db) if job.db is not None else 0
    counts = tmp_path / "counts.csv"
    counts.write_text(f"user_id,screen_name,following_count\n{first[1][0]},{first[1][1]},7\n")
    done = cli("users", "import", str(counts), "--store", job.url, cwd=tmp_path, env=job.env)
    assert done.code == 0, done.err
    before = _keys(job.db) if job.db is not None else {}
    if job.db is not None:
        assert _generation(job.db) == gen
        assert _stale(job.db) == 0
    done = cli(
        "users", "import", str(_csv(tmp_path / "later.csv", later)), "--store", job.url,
        cwd=tmp_path, env={**job.env, **LOG},
    )  # fmt: skip
    assert done.code == 0, done.err
    if job.db is not None:
        rematched = [line.split()[-3:] for line in done.err.splitlines() if "rematched" in line]
        # The list naming the users it added is matched again; the other one is kept.
        assert rematched == [["lists_rematched", "lists=1", "unchanged=1"]]
        after = _keys(job.db)
        assert _generation(job.db) == gen + 1
        assert _stale(job.db) == 0
        kept = first[1][0]
        assert after[kept] == (before[kept][0], gen + 1)  # its keys as they were, restamped
    outside = [uid or f"name:{name}" for name, uid in friends]
    assert _targets(job, tmp_path) == [
        *[first[1][0], outside[1], later[0][0], later[1][0]],
        *[first[1][0], outside[1]],
    ]


def _generation(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT generation FROM key_generation").fetchone()[0])
    finally:
        conn.close()
