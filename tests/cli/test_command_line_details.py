"""The command line's small courtesies, each driven as a separate process: the store URL
of an absolute path, outputs whose name says another format, "did you mean", every
command's help page, estimate's --workers and a finished job, short console lines, and
the simulator's first words on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli.conftest import Result, cli
from friendscrape.configdoc import environ_without_configuration
from friendscrape.simulator import SimConfig
from friendscrape.simulator.formats import write_users_csv
from friendscrape.simulator.process import SimulatorProcess, start_simulator_process

_CLI = (sys.executable, "-m", "friendscrape.cli")


def _job(tmp_path: Path, sim: SimulatorProcess, users: int = 40) -> dict[str, str]:
    """A small Bluesky job in ``tmp_path``'s store, planned in one partition; the
    environment that points a run at the simulator."""
    every = tmp_path / "every.csv"
    write_users_csv(sim.config.make_graph(), every, "bluesky")
    lines = every.read_text().splitlines()[: users + 1]
    (tmp_path / "u.csv").write_text("\n".join(lines) + "\n")
    every.unlink()
    assert cli("users", "import", "u.csv", "--source", "bluesky", cwd=tmp_path).code == 0
    assert cli("partitions", "plan", "--count", "1", cwd=tmp_path).code == 0
    return {"FRIENDSCRAPE_BASE_URL": sim.base_url}


def _one_error_line(result: Result) -> str:
    assert result.code == 2, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert "Traceback" not in result.err
    return lines[0]


# -- the store URL of an absolute path ------------------------------------------------------


def test_a_store_url_read_as_relative_names_the_absolute_one(tmp_path: Path) -> None:
    absolute = tmp_path / "x.db"  # its folder exists; read as relative, it does not
    url = f"sqlite://{absolute}"  # three slashes: the relative reading of the path
    line = _one_error_line(cli("--store", url, "status", cwd=tmp_path))
    assert line == (
        f"friendscrape: error: cannot open SQLite store {str(absolute)[1:]!r}: folder does "
        f"not exist; for the absolute path {absolute} write sqlite:///{absolute}"
    )
    # Written as suggested, the path is the absolute one (no users there yet).
    fixed = _one_error_line(cli("--store", f"sqlite:///{absolute}", "status", cwd=tmp_path))
    assert fixed.startswith(f"friendscrape: error: no SQLite store at {str(absolute)!r}")


def test_a_missing_folder_with_no_absolute_reading_gets_no_hint(tmp_path: Path) -> None:
    line = _one_error_line(cli("--store", "sqlite:///nowhere-xyz/x.db", "status", cwd=tmp_path))
    assert line.endswith("'nowhere-xyz/x.db': folder does not exist")


# -- outputs whose name says another format -------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["export", "--output", "x.xlsx"],
            (
                "--output 'x.xlsx': with no --format, export writes JSON lines (.jsonl, .ndjson, "
                ".json), not .xlsx: name the file so, or say the format with "
                "--format jsonl|csv|edges|nodes|graphml|gexf"
            ),
        ),
        (
            ["export", "--output", "friends.csv"],
            "--output 'friends.csv': with no --format, export writes JSON lines",
        ),
        (
            ["export", "--format", "edges", "--output", "e.xlsx.gz"],
            (
                "--output 'e.xlsx.gz': export --format edges writes CSV, JSON lines or Parquet "
                "(.csv, .jsonl, .parquet, .ndjson), not .xlsx: name the file so, or say the "
                "format with --as csv|jsonl|parquet"
            ),
        ),
        (
            ["export", "--format", "nodes", "--output", "n.edges"],
            "--output 'n.edges': export --format nodes writes CSV, JSON lines or Parquet",
        ),
        (
            ["report", "--output", "r.xlsx"],
            (
                "--output 'r.xlsx': report writes HTML (.html, .htm), not .xlsx: name the file "
                "so, or say the format with --as html"
            ),
        ),
        (
            ["simulate", "--write-users", "u.xlsx"],
            (
                "--write-users 'u.xlsx': the users file is CSV (.csv), not .xlsx: name the "
                "file so, or say the format with --as csv"
            ),
        ),
    ],
)
def test_an_output_named_as_another_format_is_refused(
    tmp_path: Path, args: list[str], said: str
) -> None:
    line = _one_error_line(cli(*args, cwd=tmp_path))
    assert line.startswith(f"friendscrape: error: {said}")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, no store


def test_a_format_said_explicitly_writes_any_name(
    tmp_path: Path, sim_process: SimulatorProcess
) -> None:
    env = _job(tmp_path, sim_process, users=5)
    assert cli("run", "--partition", "1", cwd=tmp_path, env=env).code == 0
    for args in (
        ["export", "--format", "csv", "--output", "a.xlsx"],
        ["export", "--format", "edges", "--as", "csv", "--output", "b.xlsx"],
        ["export", "--format", "edges", "--output", "c.csv.gz"],
        ["export", "--output", "d.ndjson"],
        ["export", "--output", "plain"],
        ["report", "--as", "html", "--output", "r.xlsx"],
        ["report", "--output", "r.htm"],
    ):
        result = cli(*args, cwd=tmp_path)
        assert result.code == 0, (args, result.err)
    assert (tmp_path / "a.xlsx").read_text().startswith("user_id,screen_name,friend_name")
    assert "target" in (tmp_path / "b.xlsx").read_text().splitlines()[0]  # the edge table
    assert (tmp_path / "r.xlsx").read_text().lstrip().lower().startswith("<!doctype html")
    first = (tmp_path / "d.ndjson").read_text().splitlines()[0]
    assert json.loads(first)["source"] == "bluesky"


def test_simulate_writes_users_under_any_name_with_as_csv(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*_CLI, "simulate", "--users", "5", "--write-users", "users.txt", "--as", "csv"],
        cwd=tmp_path,
        env=environ_without_configuration(os.environ),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "simulator.ready" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert (tmp_path / "users.txt").read_text().startswith("user_id,screen_name")


# -- did you mean ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["staus"],
            (
                "argument COMMAND: invalid choice: 'staus' (choose from 'users', 'partitions', "
                "'run', 'export', 'waves', 'simulate', 'demo', 'status', 'estimate', 'bench', "
                "'report'); "
                "did you mean 'status'? (see friendscrape --help)"
            ),
        ),
        (
            ["run", "--partion", "3"],
            (
                "unrecognized arguments: --partion 3; did you mean --partition? "
                "(see friendscrape run --help)"
            ),
        ),
        (
            ["users", "import", "u.csv", "--sorce", "bluesky"],
            (
                "unrecognized arguments: --sorce bluesky; did you mean --source? "
                "(see friendscrape users import --help)"
            ),
        ),
        (
            ["export", "--format", "cvs"],
            (
                "argument --format: invalid choice: 'cvs' (choose from 'jsonl', 'csv', 'edges', "
                "'nodes', 'graphml', 'gexf', 'changes'); did you mean 'csv'? "
                "(see friendscrape export --help)"
            ),
        ),
        (
            ["simulate", "--usrs", "3"],
            (
                "unrecognized arguments: --usrs 3; did you mean --users? "
                "(see friendscrape simulate --help)"
            ),
        ),
        (
            ["status", "--zzzzzz"],
            "unrecognized arguments: --zzzzzz (see friendscrape status --help)",
        ),
    ],
)
def test_a_mistyped_word_gets_the_closest_one(tmp_path: Path, args: list[str], said: str) -> None:
    (tmp_path / "u.csv").write_text("user_id,screen_name\n1,someone\n")
    assert _one_error_line(cli(*args, cwd=tmp_path)) == f"friendscrape: error: {said}"


# -- help pages ------------------------------------------------------------------------------

_PAGES = [
    ["users"],
    ["users", "import"],
    ["partitions"],
    ["partitions", "plan"],
    ["partitions", "show"],
    ["partitions", "place"],
    ["run"],
    ["export"],
    ["waves"],
    ["waves", "new"],
    ["waves", "list"],
    ["simulate"],
    ["demo"],
    ["status"],
    ["estimate"],
    ["bench"],
    ["report"],
]


@pytest.mark.parametrize("words", _PAGES, ids=" ".join)
def test_every_help_page_has_a_description_and_an_example(tmp_path: Path, words: list[str]) -> None:
    result = cli(*words, "--help", cwd=tmp_path)
    assert result.code == 0, result.err
    blocks = result.out.split("\n\n")
    # The block after the usage is a sentence saying what the command does.
    assert blocks[1][0].isupper(), blocks[1]
    assert blocks[1].rstrip().endswith("."), blocks[1]
    # The help ends with an example (a command of two words: one of each action).
    assert "\nexample" in result.out
    examples = result.out.split("\nexample")[-1].splitlines()[1:]
    assert examples
    assert all(line.startswith(f"  friendscrape {words[0]} ") for line in examples), examples


def test_demo_help_names_the_store_the_demo_uses(tmp_path: Path) -> None:
    out = " ".join(cli("demo", "--help", cwd=tmp_path).out.split())
    assert "--store URL the demo's own store, emptied first (default: " in out
    assert "sqlite:///friendscrape-demo.db, not FRIENDSCRAPE_STORE's default)" in out
    assert "default sqlite:///friendscrape.db" not in out
    # Every other command's --store keeps the setting's default.
    status = " ".join(cli("status", "--help", cwd=tmp_path).out.split())
    assert "default sqlite:///friendscrape.db" in status


def test_users_and_rate_limit_say_what_each_command_means(tmp_path: Path) -> None:
    sim = " ".join(cli("simulate", "--help", cwd=tmp_path).out.split())
    est = " ".join(cli("estimate", "--help", cwd=tmp_path).out.split())
    assert "--users USERS accounts the simulated platform holds" in sim
    assert "--rate-limit R|N/W the simulated platform's own limit on each client" in sim
    assert "--users USERS users the job still has to collect" in est
    assert "--rate-limit RATE_LIMIT your own cap on the requests per second" in est


# -- estimate ----------------------------------------------------------------------------


def test_estimate_with_workers_gives_each_tier_for_that_many(tmp_path: Path) -> None:
    args = ["estimate", "--users", "100000", "--rate", "20000", "--source", "bluesky"]
    result = cli(*args, "--workers", "3", cwd=tmp_path)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "100,000 users, 3 workers, deadline 10 days, source bluesky"
    standard = next(line for line in lines if line.startswith("standard-1x"))
    assert standard.split()[4:8] == ["3", "1.67", "days", "$4.17"]
    assert standard.endswith("  ok")
    eco = next(line for line in lines if line.startswith("eco"))  # at most one worker
    assert eco.endswith("more workers than the tier allows")
    assert "  - rate given: 20,000 users/day per worker at concurrency 50" in lines
    assert not any("measured rate" in line for line in lines)
    data = json.loads(cli(*args, "--workers", "3", "--json", cwd=tmp_path).out)
    assert data["workers"] == 3
    assert data["rate_measured"] is False


def test_estimate_from_a_finished_job_says_nothing_is_left(
    tmp_path: Path, sim_process: SimulatorProcess
) -> None:
    env = _job(tmp_path, sim_process, users=10)
    assert cli("run", "--partition", "1", cwd=tmp_path, env=env).code == 0
    line = _one_error_line(cli("estimate", "--from-status", "--allow-simulated", cwd=tmp_path))
    assert line == (
        "friendscrape: error: nothing left to collect: all 10 users of this job are done; "
        "give --users N to estimate N more at its measured rate"
    )
    more = cli("estimate", "--from-status", "--allow-simulated", "--users", "500", cwd=tmp_path)
    assert more.code == 0, more.err
    assert any(line.startswith("  - measured rate: ") for line in more.out.splitlines())


# -- console logs ----------------------------------------------------------------------------


def test_a_runs_console_lines_are_short_and_its_progress_a_sentence(tmp_path: Path) -> None:
    # Pages answered after 0.2 s: a list of two pages or more keeps the run going well past
    # several progress intervals of 0.05 s, however fast the machine (with no latency a
    # run of 40 users could end before the first progress line).
    config = SimConfig(users=150, latency=0.2, mean_friends=60)
    with start_simulator_process(config) as slow:
        env = _job(tmp_path, slow)
        env |= {"COLUMNS": "80", "FRIENDSCRAPE_PROGRESS_INTERVAL": "0.05"}
        result = cli("run", "--partition", "1", "--log-format", "console", cwd=tmp_path, env=env)
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert lines, result.err
    assert max(len(line) for line in lines) <= 79
    assert not any("limiter.concurrency" in line for line in lines)
    assert not any("run_id" in line for line in lines)
    progress = [line for line in lines if " progress" in line]
    assert progress
    assert " info    progress: " in progress[-1]
    assert " done, " in progress[-1]
    assert " users/min, " in progress[-1]
    assert "{" not in progress[-1]
    assert any(" info    run.finished users=40 " in line for line in lines)


def test_debug_shows_the_details_and_json_keeps_every_event(
    tmp_path: Path, sim_process: SimulatorProcess
) -> None:
    env = _job(tmp_path, sim_process) | {"COLUMNS": "80"}
    debug = cli(
        "run", "--partition", "1", "--log-format", "console", "--log-level", "debug",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert debug.code == 0, debug.err
    assert "limiter.concurrency" in debug.err
    assert "run_id=" in debug.err
    (tmp_path / "friendscrape.db").unlink()
    for side in ("-wal", "-shm"):
        (tmp_path / f"friendscrape.db{side}").unlink(missing_ok=True)
    env = _job(tmp_path, sim_process)
    plain = cli("run", "--partition", "1", "--log-format", "json", cwd=tmp_path, env=env)
    events = [json.loads(line) for line in plain.err.splitlines()]
    concurrency = [e for e in events if e["event"] == "limiter.concurrency"]
    assert concurrency
    assert all(e["level"] == "info" for e in concurrency)
    assert all("run_id" in e for e in events if e["event"] == "run.started")


# -- the simulator on a terminal -------------------------------------------------------------


def _first_lines_on_a_terminal(args: list[str], cwd: Path, count: int) -> list[str]:
    """The first ``count`` lines a command writes to a terminal (a pseudo-terminal)."""
    leader, follower = pty.openpty()
    env = environ_without_configuration(os.environ) | {"COLUMNS": "80"}
    proc = subprocess.Popen(
        [*_CLI, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while seen.count(b"\n") < count and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if ready:
                seen += os.read(leader, 4096)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        os.close(leader)
    return seen.decode().replace("\r", "").splitlines()[:count]


def test_the_simulator_on_a_terminal_says_where_it_listens_and_how_to_stop_it(
    tmp_path: Path,
) -> None:
    first, second = _first_lines_on_a_terminal(["simulate", "--users", "5"], tmp_path, 2)
    pid_text = first.split("(pid ")[1].split(")")[0]
    assert first.startswith("simulator at http://127.0.0.1:")
    assert first.endswith(f"; stop it with: kill {pid_text} (or Ctrl-C)")
    assert " info    simulator.ready base_url=http://127.0.0.1:" in second
    assert "{" not in second
    assert len(second) <= 79
