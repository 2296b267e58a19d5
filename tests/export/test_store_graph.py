"""Each store resolves edge targets to the job's ids in its own query (by upstream id, by
a user's name ignoring case), lists every user as a node, and cuts by partition."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from friendscrape.config import Settings
from friendscrape.models import FriendList, Status, User
from friendscrape.stores.base import EdgeList, Store
from friendscrape.stores.bigquery import BigQueryStore

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _result(
    user: User,
    names: tuple[str, ...],
    ids: tuple[str, ...] = (),
    *,
    source: str = "x-api",
    status: Status = Status.OK,
    partition: int = 1,
    truncated: bool = False,
) -> FriendList:
    return FriendList(
        user_id=user.user_id,
        screen_name=user.screen_name,
        status=status,
        source=source,
        partition=partition,
        start_at=T0,
        end_at=T0,
        friend_names=names,
        friend_ids=ids,
        following_count=user.following_count,
        truncated=truncated,
    )


ADA = User("10", "Ada", 3)
BOB = User("200", "bob", 2)
CY = User("3000", "111@mast.example", 100)  # a mastodon user: its name is an upstream id
DEE = User("40000", "dee", 5)  # never collected


async def _job(store: Store) -> None:
    await store.import_users([ADA, BOB, CY, DEE])
    await store.plan_partitions(2)
    await store.save(
        [
            # twitter-mobile: names only; BOB by name in another case, an outsider unknown.
            _result(ADA, ("BOB", "outsider", "111@mast.example"), source="twitter-mobile"),
            # x-api: ids; ADA by id, an outsider keeps its upstream id.
            _result(BOB, ("ada", "someone"), ("10", "999")),
            # mastodon: the upstream id of ADA is not ADA's key, but BOB's name is.
            _result(
                CY,
                ("bob@mast.example", "zed@mast.example"),
                ("5@mast.example", "6@mast.example"),
                source="mastodon",
                truncated=True,
            ),
        ]
    )


async def _edges(store: Store, **kwargs: int | None) -> list[EdgeList]:
    return [e async for e in store.edge_lists(**kwargs)]


async def test_targets_resolve_to_the_jobs_ids_in_the_store(store: Store) -> None:
    await _job(store)
    edges = {e.source_id: e for e in await _edges(store)}
    assert list(edges) == ["10", "200", "3000"]
    ada = edges["10"]
    assert ada.names == ["BOB", "outsider", "111@mast.example"]
    assert ada.targets == ["200", "", "3000"]
    assert ada.known == [True, False, True]
    assert ada.platform == "twitter-mobile"
    assert edges["200"].targets == ["10", "999"]
    assert edges["200"].known == [True, False]
    # "bob@mast.example" is not BOB's name: only upstream ids here.
    assert edges["3000"].targets == ["5@mast.example", "6@mast.example"]
    assert edges["3000"].known == [False, False]


async def test_nodes_list_every_user_with_completeness(store: Store) -> None:
    await _job(store)
    nodes = {n.user_id: n async for n in store.nodes()}
    assert list(nodes) == ["10", "200", "3000", "40000"]
    assert nodes["40000"].status == "pending"
    assert nodes["40000"].friend_count is None
    assert not nodes["40000"].complete
    assert nodes["10"].complete  # the walk reached the end
    assert nodes["10"].collected_at == T0
    assert nodes["3000"].truncated
    assert not nodes["3000"].complete  # capped at 2 of 100
    assert nodes["200"].name == "bob"
    assert {n.partition for n in nodes.values()} <= {1, 2}


async def test_one_partition_only(store: Store) -> None:
    await _job(store)
    plan = await store.partitions()
    first = {n.user_id async for n in store.nodes(partition=plan[0].number)}
    second = {n.user_id async for n in store.nodes(partition=plan[1].number)}
    assert first | second == {"10", "200", "3000", "40000"}
    assert not first & second
    edges = {e.source_id for e in await _edges(store, partition=plan[0].number)}
    assert edges == first - {"40000"}


@pytest.mark.bigquery
@pytest.mark.parametrize("store_settings", ["bigquery"], indirect=True)
async def test_bigquery_views_hold_the_graph(store: Store, store_settings: Settings) -> None:
    await _job(store)
    assert isinstance(store, BigQueryStore)
    dataset = store_settings.store.removeprefix("bigquery://").replace("/", ".")
    edges = [
        dict(r.items())
        for r in store.client.query(
            f"SELECT source_id, target_id, target_name FROM `{dataset}.edges`"
            " WHERE source_id = '10' ORDER BY position"
        ).result()
    ]
    assert [(e["target_id"], e["target_name"]) for e in edges] == [
        ("200", "BOB"),
        ("name:outsider", "outsider"),
        ("3000", "111@mast.example"),
    ]
    nodes = {
        r["id"]: r["complete"]
        for r in store.client.query(f"SELECT id, complete FROM `{dataset}.nodes`").result()
    }
    assert nodes == {"10": True, "200": True, "3000": False, "40000": False}
