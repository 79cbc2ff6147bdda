"""BatchRecorder: write a batch of run records, in bulk where the store allows, one outcome each.

Runs in the writer process. On a SQL store, the records `SqlBulkRecorder` supports go in one
transaction; if that transaction fails for any reason but an unreachable store (a record
written before, a value the database refuses), they are written one by one through
`ZenStoreRecorder` (ZenML's public API, idempotent per invocation id), as are records with
artifacts and every record on a REST store. Each record gets None (written) or a
`RecordFailed` saying whether the store was unreachable (worth waiting for) or refused it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from zenml_serving.tracking.process import RecordFailed
from zenml_serving.tracking.recorder import ZenStoreRecorder

if TYPE_CHECKING:
    from zenml_serving.tracking.records import RunRecord
    from zenml_serving.tracking.sql_bulk import SqlBulkRecorder

__all__ = ["BatchRecorder", "store_unreachable"]

_log = structlog.stdlib.get_logger(__name__)


def store_unreachable(exc: BaseException) -> bool:
    """True for errors that mean "the store is not there" rather than "it refused this"."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    try:
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:  # pragma: no cover - requests ships with ZenML
        pass
    return isinstance(exc, (ConnectionError, TimeoutError))


class BatchRecorder:
    """Bulk SQL where possible, ZenML's public API otherwise."""

    def __init__(self, *, bulk: bool = True) -> None:
        from zenml.client import Client
        from zenml.zen_stores.sql_zen_store import SqlZenStore

        client = Client()
        self._public = ZenStoreRecorder(client)
        self._bulk: SqlBulkRecorder | None = None
        if bulk and isinstance(client.zen_store, SqlZenStore):
            from zenml_serving.tracking.sql_bulk import SqlBulkRecorder

            self._bulk = SqlBulkRecorder(client)

    def write(self, records: list[RunRecord]) -> list[RecordFailed | None]:
        """Write `records`; one outcome per record, in order."""
        outcomes: list[RecordFailed | None] = [None] * len(records)
        one_by_one = list(range(len(records)))
        if self._bulk is not None:
            try:
                bulk = [i for i in one_by_one if self._bulk.supports(records[i])]
                self._bulk.write([records[i] for i in bulk])
            except Exception as exc:
                if store_unreachable(exc):
                    failed = RecordFailed(f"{type(exc).__name__}: {exc}", unavailable=True)
                    return [failed] * len(records)
                _log.warning(
                    "tracking_bulk_write_fell_back",
                    records=len(records),
                    error_type=type(exc).__name__,
                )
            else:
                done = set(bulk)
                one_by_one = [i for i in one_by_one if i not in done]
        for i in one_by_one:
            try:
                self._public.write(records[i])
            except Exception as exc:
                outcomes[i] = RecordFailed(
                    f"{type(exc).__name__}: {exc}", unavailable=store_unreachable(exc)
                )
        return outcomes
