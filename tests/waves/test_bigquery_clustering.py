"""A results table made before waves (not clustered) is clustered by wave when a store
is opened to write, on the local BigQuery server: a metadata change only."""

from __future__ import annotations

import pytest

from bqemu import Emulator
from friendscrape.configparts import store_config
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores import open_store
from storefixtures import PROJECT, bq_settings

pytestmark = pytest.mark.bigquery


async def test_an_unclustered_results_table_is_clustered_by_wave(
    bq_emulator: Emulator, bq_dataset: str
) -> None:
    from google.api_core.client_options import ClientOptions  # noqa: PLC0415
    from google.auth.credentials import AnonymousCredentials  # noqa: PLC0415
    from google.cloud import bigquery  # noqa: PLC0415

    client = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=bq_emulator.endpoint),
    )
    table_id = f"{PROJECT}.{bq_dataset}.{schema.RESULTS}"
    try:
        client.create_dataset(f"{PROJECT}.{bq_dataset}", timeout=20)
        older = bigquery.Table(table_id, schema=list(schema.RESULTS_SCHEMA[:6]))
        assert client.create_table(older, timeout=20).clustering_fields is None
        store = open_store(store_config(bq_settings(bq_emulator.endpoint, bq_dataset)))
        await store.open()
        await store.close()
        assert client.get_table(table_id, timeout=20).clustering_fields == ["wave"]
    finally:
        client.close()
