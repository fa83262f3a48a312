"""Each diagnostic and each health check is declared once, and the declarations agree.

No server needed: these read the classes, the statements and the registry. That every frame a
real server returns has the declared columns is checked in ``test_diagnostics.py``.
"""

from __future__ import annotations

import inspect
from dataclasses import fields

import pandas as pd
import pytest

from bindu_storage import InvalidTypeError, InvalidValueError
from bindu_storage.analysis.diagnostics import DIAGNOSTICS, Diagnostics, report
from bindu_storage.analysis.diagnostics.pool import pool_stats
from bindu_storage.analysis.diagnostics.query import columns_of, records_frame
from bindu_storage.analysis.diagnostics.report import CHECKS, Thresholds, model
from bindu_storage.storage.read import PoolStats

TOPICS = {"connections", "pool", "queries", "tables", "indexes", "locks", "replication", "schema", "bindu",
          "retention", "settings"}
NOT_DIAGNOSTICS = {"open", "close", "health_report", "statements_status"}


def test_columns_come_from_the_select_list() -> None:
    sql = """
    SELECT s.relname AS table_name, pid, coalesce(x, 'a, (b') AS odd,
           round(extract(epoch FROM now() - t), 1) AS seconds,
           (SELECT count(*) FROM y) AS counted
    FROM pg_stat_activity s
    """
    assert columns_of(sql) == ("table_name", "pid", "odd", "seconds", "counted")
    assert columns_of("SELECT pg_is_in_recovery() AS standby") == ("standby",)
    with pytest.raises(ValueError, match="alias"):
        columns_of("SELECT count(*) FROM t")


def test_every_public_coroutine_of_diagnostics_is_a_declared_diagnostic() -> None:
    public = {name for name, member in inspect.getmembers(Diagnostics, inspect.iscoroutinefunction)
              if not name.startswith("_")}
    assert set(DIAGNOSTICS) == public - NOT_DIAGNOSTICS
    assert list(DIAGNOSTICS)[:2] == ["connection_usage", "sessions_by_state"]  # the topics' order
    assert set(vars(Diagnostics)) & public == {"health_report"}  # composed: nothing forwarded


def test_each_topic_is_a_class_of_its_module() -> None:
    modules = {base.__module__.rpartition(".")[2] for base in Diagnostics.__bases__}
    assert modules == TOPICS


def test_each_check_is_registered_once_with_a_topic_and_its_thresholds() -> None:
    names = [c.name for c in CHECKS]
    assert len(names) == len(set(names)) == 21
    assert {c.topic for c in CHECKS} <= TOPICS
    judged_by = {field for c in CHECKS for field in c.thresholds}
    assert judged_by == {f.name for f in fields(Thresholds)}  # every threshold is used, none made up
    for c in CHECKS:
        assert c.name in model.__doc__, f"{c.name} is missing from the thresholds table"
        parameters = list(inspect.signature(c.run).parameters)
        assert len(parameters) == 1 + len(c.thresholds) + len(c.options), c.name
    with pytest.raises(ValueError, match="twice"):
        report.check("dead rows", "tables")(CHECKS[0].run)


def test_text_is_str_and_dtype_backend_converts() -> None:
    rows = [("a", 1, 1.5, True), (None, None, None, None)]
    frame = records_frame(rows, ["name", "count", "mean", "flag"], ["text", "int8", "float8", "bool"])
    assert [str(t) for t in frame.dtypes] == ["str", "Int64", "float64", "boolean"]
    assert pd.isna(frame["name"].iloc[1])
    nullable = records_frame(rows, ["name", "count", "mean", "flag"], ["text", "int8", "float8", "bool"],
                             "numpy_nullable")
    assert [str(t) for t in nullable.dtypes] == ["string", "Int64", "Float64", "boolean"]
    arrow = pool_stats(PoolStats(size=4, min_size=1, max_size=8, idle=1), "pyarrow")
    assert all(isinstance(t, pd.ArrowDtype) for t in arrow.dtypes)
    assert arrow["saturation_percent"].iloc[0] == 37.5 and arrow["in_use"].iloc[0] == 3
    empty = pool_stats(None)
    assert not empty["connected"].iloc[0] and pd.isna(empty["size"].iloc[0])
    with pytest.raises(InvalidValueError, match="dtype_backend"):
        Diagnostics("postgresql://u@127.0.0.1:1/db", dtype_backend="arrow")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        pool_stats("a pool")  # type: ignore[arg-type]
