"""A quote left open in the users CSV rejects its own line and nothing else."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cli.conftest import cli


def test_an_unmatched_quote_rejects_one_line_not_the_rows_after_it(tmp_path: Path) -> None:
    rows = [f"{n},user_{n}" for n in range(1, 2001)]
    rows[1] = '2,"bob'  # line 3 of the file: the quote is never closed
    users = tmp_path / "users.csv"
    users.write_text("user_id,screen_name\n" + "\n".join(rows) + "\n", encoding="utf-8")

    done = cli("users", "import", str(users), cwd=tmp_path)

    assert done.code == 1, done.err
    assert "Traceback" not in done.err
    assert done.err.strip().splitlines() == [
        "friendscrape: bad row: line 3: quotes do not pair up on this line (unexpected end of data)"
    ]
    assert "1999 users added" in done.out
    with sqlite3.connect(tmp_path / "friendscrape.db") as db:
        names = [row[0] for row in db.execute("SELECT screen_name FROM users")]
    assert len(names) == 1999
    assert not [name for name in names if "\n" in name or "\r" in name]
    assert {"user_1", "user_3", "user_2000"} <= set(names)


def test_a_quoted_field_over_two_lines_is_rejected_and_the_rows_after_it_kept(
    tmp_path: Path,
) -> None:
    users = tmp_path / "users.csv"
    users.write_text('user_id,screen_name\n1,ada\n2,"bo\nb"\n3,"carol"\n4,dave\n', encoding="utf-8")

    done = cli("users", "import", str(users), cwd=tmp_path)

    assert done.code == 1
    bad = done.err.strip().splitlines()
    assert [line.split(":")[1] for line in bad] == [" bad row", " bad row"], bad
    assert "line 3:" in bad[0]
    assert "line 4:" in bad[1]
    with sqlite3.connect(tmp_path / "friendscrape.db") as db:
        got = dict(db.execute("SELECT user_id, screen_name FROM users").fetchall())
    assert got == {"1": "ada", "3": "carol", "4": "dave"}
