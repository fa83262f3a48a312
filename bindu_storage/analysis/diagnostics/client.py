"""``Diagnostics``: every topic's diagnostics on one read-only session, and ``health_report``.

The class is the topics put together, PgHero style: each topic class holds its diagnostics as
methods (one readable SQL statement each), so there is nothing to forward::

    async with Diagnostics(url, schema="public") as diag:
        sizes = await diag.table_sizes()
        report = await diag.health_report()
"""

from __future__ import annotations

from bindu_storage.analysis.diagnostics import pool  # the pool topic (a module name, not a pool)
from bindu_storage.analysis.diagnostics.bindu import BinduTopic
from bindu_storage.analysis.diagnostics.connections import ConnectionsTopic
from bindu_storage.analysis.diagnostics.indexes import IndexesTopic
from bindu_storage.analysis.diagnostics.locks import LocksTopic
from bindu_storage.analysis.diagnostics.queries import QueriesTopic
from bindu_storage.analysis.diagnostics.replication import ReplicationTopic
from bindu_storage.analysis.diagnostics.report.build import build_report
from bindu_storage.analysis.diagnostics.report.model import HealthReport, Thresholds
from bindu_storage.analysis.diagnostics.retention import RetentionTopic
from bindu_storage.analysis.diagnostics.schema import SchemaTopic
from bindu_storage.analysis.diagnostics.settings import SettingsTopic
from bindu_storage.analysis.diagnostics.tables import TablesTopic
from bindu_storage.errors import InvalidValueError
from bindu_storage.storage.read import SqlReadable


class Diagnostics(
    ConnectionsTopic,
    pool.PoolTopic,
    QueriesTopic,
    TablesTopic,
    IndexesTopic,
    LocksTopic,
    ReplicationTopic,
    SchemaTopic,
    BinduTopic,
    RetentionTopic,
    SettingsTopic,
):
    """Read-only diagnostics of one database and Bindu schema; an async context manager.

    ``target`` is a PostgreSQL URL or a storage readable with SQL, such as a ``PostgresStorage``
    (then its schema is the default and its pool is what ``pool_stats`` describes). Every
    diagnostic is a method returning a DataFrame with the columns of its statement (listed in
    ``DIAGNOSTICS``); ``health_report`` turns them into findings.
    """

    async def health_report(
        self, thresholds: Thresholds | None = None, *, jsonb_sample_percent: float | None = None
    ) -> HealthReport:
        """Every check against its thresholds, as findings (see :mod:`.report`)."""
        await self.open()
        return await build_report(self, thresholds, jsonb_sample_percent=jsonb_sample_percent)


async def health_report(
    target: str | SqlReadable | Diagnostics,
    *,
    schema: str | None = None,
    thresholds: Thresholds | None = None,
    jsonb_sample_percent: float | None = None,
) -> HealthReport:
    """Open read-only diagnostics of ``target`` (URL, storage, or an open ``Diagnostics``) and
    judge every check against ``thresholds`` (default: the table of :mod:`.report.model`)."""
    if isinstance(target, Diagnostics):
        if schema is not None and schema != target.schema:
            raise InvalidValueError(
                f"schema={schema!r} differs from the Diagnostics' schema {target.schema!r}; "
                "open a Diagnostics for that schema"
            )
        return await target.health_report(thresholds, jsonb_sample_percent=jsonb_sample_percent)
    async with Diagnostics(target, schema=schema) as diag:
        return await diag.health_report(thresholds, jsonb_sample_percent=jsonb_sample_percent)
