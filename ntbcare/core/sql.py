"""SQL expressions written once for both databases the service runs on (SQLite and PostgreSQL).

Aggregations that read tens of thousands of timestamps (the public figures) take them as POSIX seconds
computed by the database: turning each into a timezone-aware ``datetime`` in Python costs more than the query.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class epoch(FunctionElement[float]):
    """POSIX seconds (float) of a UTC timestamp column; NULL stays NULL."""

    type = Float()
    inherit_cache = True
    name = "epoch"


@compiles(epoch)
def _epoch_default(element: epoch, compiler: Any, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: Any, **kw: Any) -> str:
    # SQLite stores UTC as text; julianday reads it (microseconds kept to ~0.1 ms in a double).
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"
