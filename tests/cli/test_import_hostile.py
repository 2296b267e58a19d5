"""Hostile rows in a users CSV (issue 22): each rejects its own line, with its number and
why, and the good rows of the file are saved, on both stores; every command a process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from friendscrape.config import Settings
from friendscrape.configparts import store_config
from friendscrape.stores import open_store
from reliability.harness import CliRun, clean_env, run_cli
from storefixtures import bq_settings

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Job:
    """A store as the CLI names it, its settings for checking rows, and the environment."""

    url: str
    settings: Settings
    env: dict[str, str]

    async def cli(self, *args: str) -> tuple[int, CliRun]:
        return await run_cli([*args, "--store", self.url], env=self.env, timeout=120)

    async def users(self) -> dict[str, tuple[str, int | None]]:
        """user_id -> (screen name, following count) of every stored user."""
        store = open_store(store_config(self.settings), read_only=True)
        await store.open()
        try:
            return {n.user_id: (n.name, n.following_count) async for n in store.nodes()}
        finally:
            await store.close()


@pytest.fixture(params=["sqlite", pytest.param("bigquery", marks=pytest.mark.bigquery)])
def job(request: pytest.FixtureRequest, tmp_path: Path) -> Job:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'job.db'}"
        return Job(url, Settings(store=url), clean_env())
    emulator = request.getfixturevalue("bq_emulator")
    dataset = request.getfixturevalue("bq_dataset")
    settings = bq_settings(emulator.endpoint, dataset)
    env = clean_env(FRIENDSCRAPE_BIGQUERY_ENDPOINT=emulator.endpoint)
    return Job(settings.store, settings, env)


def _bad_rows(run: CliRun) -> list[str]:
    assert "Traceback" not in run.stderr, run.stderr
    # Other lines of stderr are the store's log events (the BigQuery store logs its steps).
    lines = [line for line in run.stderr.splitlines() if line.startswith("friendscrape:")]
    assert all(line.startswith("friendscrape: bad row: ") for line in lines), lines
    return [line.removeprefix("friendscrape: bad row: ") for line in lines]


async def test_nul_and_control_characters_reject_their_lines(job: Job, tmp_path: Path) -> None:
    rows = [
        "1,alice,5",
        "2,bo\0b,3",  # line 3
        "3\0,carol,2",  # line 4
        "4,esc\x1b[31m,1",  # line 5
        "5,del\x7f,1",  # line 6
        "6,bidi\u202eevil,1",  # line 7
        "7,line\u2028sep,1",  # line 8
        "8,c1\x85x,1",  # line 9
        # Legitimate forms stay: Mastodon ID@INSTANCE (an IDN, a label with ZWNJ),
        # Bluesky DIDs and handles, names in other scripts.
        "109876543210@mastodon.social,Gargron@mastodon.social,10",
        "9@xn--mnchen-3ya.de,münchen@münchen.social,1",
        "did:plc:z72i7hdynmk6r22z27h6tvur,bsky.app,3",
        "10,\u0645\u06cc\u200c\u0631\u0648\u0645@example.ir,1",
        "11,dave,7",
    ]
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,screen_name,following_count\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )

    code, run = await job.cli("users", "import", str(users))

    assert code == 1, run.tail()
    bad = _bad_rows(run)
    assert [row.split(":")[0] for row in bad] == [f"line {n}" for n in range(3, 10)], bad
    assert bad[0] == (
        "line 3: screen_name 'bo\\x00b' holds control or invisible character U+0000, "
        "which no platform's ids or names have"
    )
    assert bad[1].startswith("line 4: user_id '3\\x00' holds control or invisible character U+0000")
    assert [row.split("character ")[1][:6] for row in bad] == [
        "U+0000",
        "U+0000",
        "U+001B",
        "U+007F",
        "U+202E",
        "U+2028",
        "U+0085",
    ]
    assert run.stdout_other == [
        "read 13 rows: 6 users added, 0 updated, 0 duplicates collapsed, 7 bad rows rejected"
    ]
    stored = await job.users()
    assert sorted(stored) == sorted(
        [
            "1",
            "109876543210@mastodon.social",
            "9@xn--mnchen-3ya.de",
            "did:plc:z72i7hdynmk6r22z27h6tvur",
            "10",
            "11",
        ]
    )
    assert not [uid for uid, (name, _) in stored.items() if "\0" in uid + name]


async def test_a_carriage_return_inside_a_line_rejects_that_line_whole(
    job: Job, tmp_path: Path
) -> None:
    # A lone CR once split its line in two: the second half of `7,"a` CR `b",1` was
    # imported as a user 'b"' named '1'. CRLF line ends stay line ends.
    users = tmp_path / "users.csv"
    users.write_bytes(
        b'user_id,screen_name,following_count\r\n1,alice,5\r\n7,"a\rb",1\r\n8,x\ry,2\n9,bob,3\n'
    )

    code, run = await job.cli("users", "import", str(users))

    assert code == 1, run.tail()
    bad = _bad_rows(run)
    assert [row.split(":")[0] for row in bad] == ["line 3", "line 4"], bad
    assert all("carriage return" in row for row in bad), bad
    assert run.stdout_other == [
        "read 4 rows: 2 users added, 0 updated, 0 duplicates collapsed, 2 bad rows rejected"
    ]
    assert await job.users() == {"1": ("alice", 5), "9": ("bob", 3)}


async def test_a_following_count_past_int64_rejects_its_line_only(job: Job, tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id,screen_name,following_count\n"
        "1,alice,9223372036854775807\n"  # 2^63 - 1: the largest kept
        "2,bob,9223372036854775808\n"  # line 3: 2^63
        f"3,carol,{'9' * 5000}\n"  # line 4: past int()'s digit limit
        "4,dave,00000000000000000000000000042\n"
        "5,eve,12\n",
        encoding="utf-8",
    )

    code, run = await job.cli("users", "import", str(users))

    assert code == 1, run.tail()
    bad = _bad_rows(run)
    assert bad == [
        "line 3: following_count '9223372036854775808' out of range (at most 9223372036854775807)",
        f"line 4: following_count '{'9' * 40}' out of range (at most 9223372036854775807)",
    ]
    assert run.stdout_other == [
        "read 5 rows: 3 users added, 0 updated, 0 duplicates collapsed, 2 bad rows rejected"
    ]
    stored = await job.users()
    assert stored == {
        "1": ("alice", 2**63 - 1),
        "4": ("dave", 42),
        "5": ("eve", 12),
    }


async def test_a_line_too_long_says_so_with_the_limit(job: Job, tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    with users.open("w", encoding="utf-8") as out:
        out.write("user_id,screen_name\n1,alice\n")
        out.write("x" * 10_000_000 + "\n")  # line 3: 10 MB, no quotes
        out.write("2,bob\n")
        out.write("3," + "y" * 200_000)  # line 5: long, and the file's last (no newline)

    code, run = await job.cli("users", "import", str(users))

    assert code == 1, run.tail()
    assert _bad_rows(run) == [
        "line 3: longer than the limit of 131,072 characters",
        "line 5: longer than the limit of 131,072 characters",
    ]
    assert run.stdout_other == [
        "read 4 rows: 2 users added, 0 updated, 0 duplicates collapsed, 2 bad rows rejected"
    ]
    assert await job.users() == {"1": ("alice", None), "2": ("bob", None)}
