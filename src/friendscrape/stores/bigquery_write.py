"""Results written with the BigQuery Storage Write API (the default stream), blocking calls.

The default stream commits each append at once, at least once: a retried append may add
a row twice, which every read already drops (rows carry their ``row_key``). Rows travel
as protocol buffers built from ``RESULTS_SCHEMA``; TIMESTAMP columns as microseconds
since the epoch, as the API documents for int64 fields
(https://cloud.google.com/bigquery/docs/write-api#data_type_conversions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from friendscrape.errors import StoreError, StoreTransientError
from friendscrape.stores.bigquery_lib import SchemaField, without_dataframes
from friendscrape.stores.bigquery_schema import RESULTS_SCHEMA, Location

_FieldType = descriptor_pb2.FieldDescriptorProto
_TYPES = {
    "STRING": _FieldType.TYPE_STRING,
    "INT64": _FieldType.TYPE_INT64,
    "INTEGER": _FieldType.TYPE_INT64,
    "TIMESTAMP": _FieldType.TYPE_INT64,
    "BOOL": _FieldType.TYPE_BOOL,
    "BOOLEAN": _FieldType.TYPE_BOOL,
}


# gRPC status codes another try may not see: DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED,
# ABORTED, INTERNAL, UNAVAILABLE.
_TRANSIENT_CODES = frozenset({4, 8, 10, 13, 14})


class WriteApiRefusedError(StoreError):
    """The Storage Write API is not served here (or not allowed): use streaming inserts."""


@cache
def _descriptor(fields: tuple[SchemaField, ...]) -> tuple[descriptor_pb2.DescriptorProto, Any]:
    """The proto descriptor of ``fields`` and the message class built from it."""
    proto = descriptor_pb2.DescriptorProto(name="ResultRow")
    for number, field in enumerate(fields, start=1):
        repeated = field.mode == "REPEATED"
        proto.field.add(
            name=field.name,
            number=number,
            type=_TYPES[field.field_type],
            label=_FieldType.LABEL_REPEATED if repeated else _FieldType.LABEL_OPTIONAL,
        )
    file = descriptor_pb2.FileDescriptorProto(name="friendscrape_result.proto", package="fs")
    file.message_type.add().CopyFrom(proto)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return proto, message_factory.GetMessageClass(pool.FindMessageTypeByName("fs.ResultRow"))


def encode(rows: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """Streaming-insert JSON rows (``bigquery_schema.to_row``) as serialized protos."""
    _, message = _descriptor(RESULTS_SCHEMA)
    kinds = {f.name: f.field_type for f in RESULTS_SCHEMA}
    out = []
    for row in rows:
        values: dict[str, Any] = {}
        for name, value in row.items():
            if value is None or name not in kinds:
                continue
            if kinds[name] == "TIMESTAMP":
                moment = datetime.fromisoformat(str(value))
                values[name] = int(moment.timestamp() * 1_000_000)
            else:
                values[name] = value
        out.append(message(**values).SerializeToString())
    return out


class StorageWriter:
    """Appends to the default stream of one table; build with ``connect``."""

    def __init__(self, client: Any, location: Location, table: str) -> None:
        self._client = client
        dataset = f"projects/{location.project}/datasets/{location.dataset}"
        self.stream = f"{dataset}/tables/{table}/streams/_default"

    @classmethod
    def connect(cls, location: Location, table: str, *, grpc_endpoint: str | None) -> StorageWriter:
        """A writer on Google's endpoint, or on an emulator's plain-text gRPC port."""
        # Here, not at the top: only a run writes results. Its read client, loaded with
        # it, would load pandas and pyarrow too.
        with without_dataframes():
            from google.cloud import bigquery_storage_v1  # noqa: PLC0415

        if grpc_endpoint is None:
            return cls(bigquery_storage_v1.BigQueryWriteClient(), location, table)  # type: ignore[no-untyped-call]
        import grpc  # type: ignore[import-untyped]  # noqa: PLC0415
        from google.cloud.bigquery_storage_v1.services.big_query_write.transports import (  # noqa: PLC0415
            BigQueryWriteGrpcTransport,
        )

        transport = BigQueryWriteGrpcTransport(channel=grpc.insecure_channel(grpc_endpoint))
        client = bigquery_storage_v1.BigQueryWriteClient(transport=transport)  # type: ignore[no-untyped-call]
        return cls(client, location, table)

    def append(self, rows: Sequence[Mapping[str, Any]], *, timeout: float) -> list[int]:
        """Append ``rows`` in one request; the indexes of rows the API refused (empty when
        all were written). Raises the client's errors (classified by the store)."""
        from google.api_core import exceptions as gexc  # noqa: PLC0415
        from google.cloud.bigquery_storage_v1 import types  # noqa: PLC0415

        proto, _ = _descriptor(RESULTS_SCHEMA)
        request = types.AppendRowsRequest(
            write_stream=self.stream,
            proto_rows=types.AppendRowsRequest.ProtoData(
                writer_schema=types.ProtoSchema(proto_descriptor=proto),
                rows=types.ProtoRows(serialized_rows=encode(rows)),
            ),
        )
        try:
            responses = list(self._client.append_rows(iter([request]), timeout=timeout))
        except (gexc.MethodNotImplemented, gexc.PermissionDenied) as exc:
            msg = f"the Storage Write API is not available: {exc}"
            raise WriteApiRefusedError(msg) from exc
        refused: list[int] = []
        for response in responses:
            refused.extend(int(e.index) for e in response.row_errors)
            if response.error.code and not response.row_errors:
                msg = f"Storage Write API append failed: {response.error.message}"
                if response.error.code in _TRANSIENT_CODES:
                    raise StoreTransientError(msg)
                raise StoreError(msg)
        return sorted(set(refused))

    def close(self) -> None:
        """Close the gRPC channel."""
        self._client.transport.close()
