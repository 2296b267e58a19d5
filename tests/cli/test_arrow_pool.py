"""An unknown Arrow allocator named in the environment is refused in our words, before
the output file is started."""

from __future__ import annotations

from pathlib import Path

from cli.conftest import cli


def test_an_unknown_arrow_allocator_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("user_id,screen_name\n1,one\n2,two\n")
    assert cli("users", "import", "users.csv", "--source", "bluesky", cwd=tmp_path).code == 0
    edges = ("export", "--format", "edges", "--output", "edges.parquet")
    done = cli(*edges, cwd=tmp_path, env={"ARROW_DEFAULT_MEMORY_POOL": "bogus"})
    assert done.code == 2, done.err
    said = (
        "friendscrape: error: ARROW_DEFAULT_MEMORY_POOL must name one of Arrow's allocators "
        "(jemalloc, mimalloc, system), not 'bogus'"
    )
    assert done.err.splitlines() == [said]
    assert not (tmp_path / "edges.parquet").exists()
    fine = cli(*edges, cwd=tmp_path, env={"ARROW_DEFAULT_MEMORY_POOL": "system"})
    assert fine.code == 0, fine.err
    assert (tmp_path / "edges.parquet").exists()
