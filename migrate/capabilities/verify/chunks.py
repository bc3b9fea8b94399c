"""Key ranges and chunking: a table is read in chunks along its key, each chunk the rows whose key lies after
the previous chunk's last key (`after`) and up to its own last key (`through`). The first chunk has no lower
bound and the last none above, so the chunks cover the whole key space: a row the replica has beyond the
primary's last key still falls in a chunk.

The chunk size follows a time budget: each query should take about `target_s`; the next size is the rows per
second just measured times that budget, never more than twice the last size.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any

from migrate.adapters.db import Statement, quote_ident
from migrate.capabilities.verify.inventory import Table

Key = tuple[Any, ...]


@dataclass(frozen=True)
class Range:
    """Rows with `after` < key <= `through`; None is unbounded on that side."""

    after: Key | None = None
    through: Key | None = None

    @property
    def whole(self) -> bool:
        return self.after is None and self.through is None


def _greater(cols: list[str], values: Key) -> tuple[str, list[Any]]:
    """(c1, ..., cn) > (v1, ..., vn), spelled out so that every optimizer ranges on the key's index:
    c1 >= v1 AND (c1 > v1 OR (c1 = v1 AND c2 > v2) OR ...)."""
    return _compare(cols, values, ">", ">=")


def _at_most(cols: list[str], values: Key) -> tuple[str, list[Any]]:
    """(c1, ..., cn) <= (v1, ..., vn), spelled out the same way."""
    return _compare(cols, values, "<", "<=", last_inclusive=True)


def _compare(cols: list[str], values: Key, strict: str, loose: str, last_inclusive: bool = False
             ) -> tuple[str, list[Any]]:
    if len(cols) != len(values):
        raise ValueError(f"a key of {len(cols)} column(s) compared with {len(values)} value(s)")
    q = [quote_ident(c) for c in cols]
    if len(q) == 1:
        return f"{q[0]} {loose if last_inclusive else strict} %s", [values[0]]
    terms, params = [], []
    for i in range(len(q)):
        op = loose if last_inclusive and i == len(q) - 1 else strict
        eqs = [f"{q[j]} = %s" for j in range(i)]
        terms.append("(" + " AND ".join([*eqs, f"{q[i]} {op} %s"]) + ")")
        params += [*values[:i], values[i]]
    return f"{q[0]} {loose} %s AND ({' OR '.join(terms)})", [values[0], *params]


def where(table: Table, rng: Range) -> tuple[str, list[Any]]:
    """The WHERE clause (without the word) selecting `rng` of `table`'s key; "1" for the whole table."""
    parts, params = [], []
    if rng.after is not None:
        sql, p = _greater(list(table.key), rng.after)
        parts.append(f"({sql})")
        params += p
    if rng.through is not None:
        sql, p = _at_most(list(table.key), rng.through)
        parts.append(f"({sql})")
        params += p
    return (" AND ".join(parts) or "1"), params


def index_hint(table: Table) -> str:
    return f" FORCE INDEX ({quote_ident(table.index)})" if table.index else ""


def order_by(table: Table) -> str:
    return ", ".join(quote_ident(c) for c in table.key)


def next_boundary(table: Table, after: Key | None, rows: int) -> Statement:
    """The key of the `rows`-th row after `after`: the last key of the next chunk (no row: the chunk is the last,
    open above)."""
    if rows < 1:
        raise ValueError("a chunk holds at least one row")
    sql, params = where(table, Range(after, None))
    cols = order_by(table)
    return Statement(f"SELECT {cols} FROM {table.sql_name}{index_hint(table)} WHERE {sql} ORDER BY {cols} "
                     f"LIMIT 1 OFFSET {int(rows) - 1}", tuple(params))


def key_of(row: dict[str, Any], table: Table) -> Key:
    return tuple(row[c] for c in table.key)


# -- keys in the journal: JSON that reads back to the same values ----------------------------------------------

def encode_key(key: Key | None) -> list | None:
    return None if key is None else [_encode(v) for v in key]


def decode_key(data: list | None) -> Key | None:
    return None if data is None else tuple(_decode(v) for v in data)


def _encode(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return {"float": repr(v)}
    if isinstance(v, bytes | bytearray):
        return {"b64": base64.b64encode(bytes(v)).decode()}
    if isinstance(v, decimal.Decimal):
        return {"decimal": str(v)}
    if isinstance(v, dt.datetime):
        return {"datetime": v.isoformat(sep=" ")}
    if isinstance(v, dt.date):
        return {"date": v.isoformat()}
    if isinstance(v, dt.timedelta):  # a TIME value
        return {"time": _time_text(v)}
    if isinstance(v, dt.time):
        return {"time": v.isoformat()}
    return {"text": str(v)}


def _decode(v: Any) -> Any:
    if not isinstance(v, dict):
        return v
    (kind, text), = v.items()
    if kind == "float":
        return float(text)
    if kind == "b64":
        return base64.b64decode(text)
    if kind == "decimal":
        return decimal.Decimal(text)
    if kind == "datetime":
        return dt.datetime.fromisoformat(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    return text  # time and anything else: the server reads the text back as the column's type


def _time_text(v: dt.timedelta) -> str:
    micros = v.days * 86_400_000_000 + v.seconds * 1_000_000 + v.microseconds
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, micro = divmod(rest, 1_000_000)
    return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}" + (f".{micro:06d}" if micro else "")


def shown_key(key: Key | None) -> Any:
    """A key for people and the report: one value alone, several as a list; bytes as hex."""
    if key is None:
        return None
    values = [v.hex() if isinstance(v, bytes | bytearray) else v if isinstance(v, int | str | float) or v is None
              else str(v) for v in key]
    return values[0] if len(values) == 1 else values


# -- the chunk size ------------------------------------------------------------------------------------------

class Sizer:
    """Rows per chunk so that a chunk's slower query takes about `target_s`."""

    def __init__(self, target_s: float = 0.25, start: int = 1000, least: int = 10, most: int = 2_000_000):
        self.target_s, self.least, self.most = target_s, least, most
        self.rows = start

    def measured(self, rows: int, seconds: float) -> int:
        """After a chunk of `rows` rows whose slower side took `seconds`: the next chunk's size."""
        if rows >= self.rows / 2 and seconds > 0:  # a short last chunk says little about the rate
            wanted = rows / seconds * self.target_s
            self.rows = int(max(self.least, min(self.most, self.rows * 2, max(self.rows / 4, wanted))))
        return self.rows

    def too_slow(self) -> int:
        """A chunk query ran into its time limit: a tenth of the size."""
        self.rows = max(self.least, self.rows // 10)
        return self.rows
