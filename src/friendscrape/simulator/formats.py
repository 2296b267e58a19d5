"""Per-source views of the synthetic graph: the user row a researcher imports to collect an
account from a source, the truth a collector must record, and the users file to import."""

from __future__ import annotations

import csv
from pathlib import Path

from friendscrape import output_file
from friendscrape.models import Status, User
from friendscrape.simulator import bluesky, mastodon, x_api
from friendscrape.simulator.graph import SimAccount, SyntheticGraph

FORMATS = ("twitter-mobile", "x-api", "bluesky", "mastodon")


HANDLE_FORMATS = ("x-api", "mastodon")
"""The sources whose users files can name accounts by handle (``handles=True``)."""


def import_user(
    source: str, graph: SyntheticGraph, account: SimAccount, *, handles: bool = False
) -> User:
    """The user row that collects ``account`` with ``--source source`` (by its handle
    when ``handles``: for x-api and mastodon)."""
    if source == "x-api":
        return x_api.import_user(account, handles=handles)
    if source == "bluesky":
        return bluesky.import_user(graph, account)
    if source == "mastodon":
        return mastodon.import_user(account, graph if handles else None)
    return User(account.user_id, account.screen_name, graph.following_hint(account))


def api_truth(
    source: str, graph: SyntheticGraph, account: SimAccount, *, handles: bool = False
) -> tuple[Status, list[str], list[str]]:
    """What an API source must record for ``account``: status, names, ids."""
    if source == "x-api":
        return x_api.expected(graph, account, handles=handles)
    if source == "bluesky":
        return bluesky.expected(graph, account)
    return mastodon.expected(graph, account, handles=handles)


def write_users_csv(
    graph: SyntheticGraph,
    path: str | Path,
    source: str = "twitter-mobile",
    *,
    handles: bool = False,
) -> int:
    """Write every account to collect as ``user_id,screen_name,following_count``, in the
    form ``source`` reads (the following count, only a hint, is empty for some users).
    Returns the number of rows written; a path that cannot be written is a UsageError."""
    rows = 0
    with output_file.opened(Path(path)) as out:
        writer = csv.writer(out)
        writer.writerow(("user_id", "screen_name", "following_count"))
        for account in graph.accounts():
            user = import_user(source, graph, account, handles=handles)
            count = "" if user.following_count is None else user.following_count
            writer.writerow((user.user_id, user.screen_name, count))
            rows += 1
    return rows
