"""Saving results on BigQuery: chunks appended through the Storage Write API, or sent as
streaming inserts when set so or when that API is refused."""

from __future__ import annotations

import asyncio
from collections.abc import (
    Sequence,
)
from typing import Any, cast

from friendscrape.errors import StoreError, StoreTransientError
from friendscrape.models import FriendList
from friendscrape.stores import bigquery_schema as schema
from friendscrape.stores.bigquery_waves import BigQueryWaves
from friendscrape.stores.bigquery_write import StorageWriter, WriteApiRefusedError

# Per-row insert error reasons worth sending again; anything else ("invalid", ...) is
# our bug or a schema mismatch and retrying would only repeat it.
_TRANSIENT_ROW_REASONS = frozenset(
    {"backendError", "internalError", "timeout", "rateLimitExceeded"}
)


class StoreInsertError(StoreError):
    """BigQuery refused rows of a streaming insert; ``errors`` are its insertErrors."""

    def __init__(self, message: str, *, errors: Sequence[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = list(errors)


class BigQuerySave(BigQueryWaves):
    """RunStore.save on BigQuery."""

    async def save(self, results: Sequence[FriendList]) -> None:
        """Append results with streaming inserts, chunked by rows and bytes.

        Not one transaction: a chunk that fails after an earlier one succeeded leaves the
        earlier rows in place; saving the same results again (a retry) sends only the rows
        not in yet, and a row sent twice is harmless anyway (same row key).
        """
        keys = [schema.row_key(result, self.run_id) for result in results]
        todo = [
            (result, key)
            for result, key in zip(results, keys, strict=True)
            if key not in self._accepted
        ]
        # Each row carries its wave; a list equal to the user's previous one is not sent.
        fields = self.save_fields([result for result, _ in todo])
        rows = [
            schema.to_row(result, run_id=self.run_id, key=key) | extra
            for (result, key), extra in zip(todo, fields, strict=True)
        ]
        for chunk in schema.chunks(rows, [key for _, key in todo]):
            if self._write_api:
                try:
                    await self._append_chunk(chunk)
                    continue
                except WriteApiRefusedError as exc:
                    # Refused, not failed: streaming inserts write the same rows.
                    self._log.warning("store.write_api_fallback", error=str(exc)[:300])
                    self._write_api = False
            await self._insert_chunk(chunk)
        self._accepted.clear()

    async def _append_chunk(self, chunk: schema.Chunk) -> None:
        """One chunk through the Storage Write API's default stream."""
        if self._writer is None:
            location, grpc = self.location, self._config.grpc_endpoint

            def connect() -> StorageWriter:
                return StorageWriter.connect(location, schema.RESULTS, grpc_endpoint=grpc)

            self._writer = await self._call("append", connect)
        writer = self._writer
        refused = await self._call(
            "append", lambda: writer.append(chunk.rows, timeout=self._timeout())
        )
        if refused:
            # The API writes none of a request's rows when it refuses one.
            self._log.error(
                "store.append_errors",
                rows=len(chunk.rows),
                failed=len(refused),
                user_ids=[chunk.rows[i]["user_id"] for i in refused[:20]],
            )
            msg = f"BigQuery refused {len(refused)} of {len(chunk.rows)} rows (Storage Write API)"
            raise StoreInsertError(msg, errors=[{"index": i} for i in refused])
        self._accepted.update(chunk.row_ids)
        self._log.debug("store.append", rows=len(chunk.rows))

    async def _insert_chunk(self, chunk: schema.Chunk) -> None:
        table_id = self.location.table_id(schema.RESULTS)
        started = asyncio.get_running_loop().time()

        def send() -> Sequence[dict[str, Any]]:
            return cast(
                "Sequence[dict[str, Any]]",
                self.client.insert_rows_json(
                    table_id,
                    list(chunk.rows),
                    row_ids=list(chunk.row_ids),
                    retry=None,
                    timeout=self._timeout(),
                ),
            )

        errors = await self._call("insert", send)
        failed = sorted({int(row["index"]) for row in errors})
        refused = set(failed)
        self._accepted.update(k for i, k in enumerate(chunk.row_ids) if i not in refused)
        if errors:
            reasons = {e.get("reason") for row in errors for e in row.get("errors", ())}
            # "stopped" rows were refused only because another row in the request was.
            transient = reasons - {"stopped"} <= _TRANSIENT_ROW_REASONS and reasons != {"stopped"}
            report = self._log.warning if transient else self._log.error
            report(
                "store.insert_errors",
                rows=len(chunk.rows),
                failed=len(failed),
                errors=errors[:5],
                user_ids=[chunk.rows[i]["user_id"] for i in failed[:20]],
            )
            listed = ", ".join(sorted(str(r) for r in reasons))
            if transient:
                msg = f"BigQuery insert: {len(failed)} of {len(chunk.rows)} rows failed ({listed})"
                raise StoreTransientError(msg)
            msg = f"BigQuery refused {len(failed)} of {len(chunk.rows)} rows: {listed}"
            raise StoreInsertError(msg, errors=errors)
        self._log.debug(
            "store.insert",
            rows=len(chunk.rows),
            seconds=round(asyncio.get_running_loop().time() - started, 3),
        )
