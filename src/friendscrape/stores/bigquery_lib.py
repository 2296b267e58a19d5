"""The Google BigQuery libraries as the store loads them: without the DataFrame and Arrow
libraries they would load beside them, and uploading a load job's file in small chunks.

google-cloud-bigquery, and the Storage API client beside it, import pandas, pyarrow
and db-dtypes at start-up whenever those are installed, for ``to_dataframe`` and
``to_arrow``, which friendscrape never calls: some 80 MB resident in every BigQuery
command, a sixth of a 512 MB dyno before any work. Both libraries take a failed import
of them for "not installed", so such imports fail for the length of their own import
only (``without_dataframes``); afterwards they import as usual (a Parquet export
imports pyarrow itself, when it writes one).

Every import of ``google.cloud.bigquery`` in the store goes through this module, so
whichever store module is loaded first, the libraries are loaded this way.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

UNUSED = ("pandas", "pyarrow", "db_dtypes", "pandas_gbq", "geopandas", "shapely")
"""Modules the Google libraries would import for DataFrames and Arrow tables only."""

UPLOAD_CHUNK = 8 * 2**20
"""Bytes per request of a load job's resumable upload (a multiple of 256 KiB, as the
upload protocol asks). The client's own 100 MB is held twice while the next chunk is
read (the last response keeps the request it sent): 200 MB of a 3.6M-user import's
staging file, against 16 MB here, for some 40 requests instead of 4."""


@contextlib.contextmanager
def without_dataframes(also: tuple[str, ...] = ()) -> Iterator[None]:
    """Inside the block, importing a module of UNUSED (or ``also``) raises ImportError
    (``None`` in ``sys.modules`` means so); one already imported is left as it is."""
    hidden = [name for name in (*UNUSED, *also) if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


# The Storage API's clients too: the query client loads them only to read results into
# DataFrames. A run loads the write client when it first writes (bigquery_write).
with without_dataframes(also=("google.cloud.bigquery_storage", "google.cloud.bigquery_storage_v1")):
    from google.cloud import bigquery
    from google.cloud.bigquery import SchemaField
    from google.cloud.bigquery import client as _client_module

# Read by the client at each upload; the client takes no chunk size of its own.
_client_module._DEFAULT_CHUNKSIZE = UPLOAD_CHUNK

__all__ = ["UPLOAD_CHUNK", "SchemaField", "bigquery", "without_dataframes"]
