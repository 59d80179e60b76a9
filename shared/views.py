"""Read models in SQLite (查询视图) that apply each upstream message exactly once."""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteTrackingRecorder

from shared.consumer import Delivered


class SQLiteView(SQLiteTrackingRecorder):
    """Applies batches of one upstream stream together with the tracking record.

    The position is read inside the same transaction, so messages that another consumer
    of this view already applied are skipped: the single-row tracking record alone would
    accept a batch that overlaps the last one, as long as it ends further on.
    """

    pragmas: tuple[str, ...] = ()
    """Settings of the writing connection, made outside the transaction (SQLite wants that)."""

    def apply(self, messages: Sequence[Delivered], tracking: Tracking) -> None:
        with self.datastore.get_connection(commit=True) as connection:
            with connection.cursor() as settings:
                for pragma in self.pragmas:
                    settings.execute(pragma)
            with connection.transaction(commit=True) as c:
                done = self._max_tracking_id(tracking.application_name, c) or 0
                for message in messages:
                    if message.position > done:
                        self.apply_message(c, tracking.application_name, message)
                self.end_batch(c)
                self._insert_tracking(c, tracking)

    def apply_message(self, c: SQLiteCursor, stream: str, message: Delivered) -> None:
        raise NotImplementedError

    def end_batch(self, c: SQLiteCursor) -> None:
        """After the batch's messages, in the same transaction: for views that write in bulk."""
