"""The result of a verify attempt, from its journal: what was compared, what differs, with stable keys.

    clean          true when every table was compared and nothing differs or stayed unverified
    primary        the server compared against (source; target after a cutover)
    replica        the server checked (target; source after a cutover)
    full           every carried table (no --tables)
    tables         per table: table, key, rows, chunks, differing_rows, unverified_rows, compared_whole
    differences    per differing chunk or table: table, kind, first_key, last_key, after, through,
                   differing_rows, rows (at most 100 of them: key, kind), detail
    unverified     chunks with rows that could not be confirmed either way: table, first_key, last_key, rows
    warnings       tables compared whole, tables not transactional, servers of different flavors
    totals         tables, rows, chunks, rechecked_chunks, seconds (comparing), rows_per_s

Kinds: `changed`, `missing_on_replica`, `extra_on_replica` (rows); `rows_differ` (a table compared whole);
`missing_on_replica`, `extra_on_replica`, `definition_differs` (whole tables, from the inventory).
"""

from __future__ import annotations

from typing import Any

from migrate.capabilities.verify.chunks import decode_key, shown_key


def summarize(records: list[dict[str, Any]], facts: dict[str, Any]) -> dict[str, Any]:
    tables = facts.get("tables", [])
    per_table: dict[str, dict[str, Any]] = {
        f"{t['schema']}.{t['name']}": {"table": f"{t['schema']}.{t['name']}", "key": t["key"], "rows": 0, "chunks": 0,
                                       "differing_rows": 0, "unverified_rows": 0, "compared_whole": not t["key"],
                                       "complete": False}
        for t in tables}
    differences = [dict(d, first_key=None, last_key=None, after=None, through=None, differing_rows=None, rows=[])
                   for d in facts.get("definition_differences", [])]
    unverified = []
    wall = 0.0
    rechecked = 0
    for r in records:
        t = per_table.get(r["table"])
        if t is None:
            continue
        t["rows"] += r["rows"]
        t["chunks"] += 1
        t["differing_rows"] += r["differing_rows"]
        t["unverified_rows"] += r["unverified"]
        t["complete"] = t["complete"] or r["through"] is None
        wall += r.get("wall_s", 0.0)
        rechecked += r.get("reads", 1) > 1
        span = {"first_key": shown_key(decode_key(r.get("first_key"))),
                "last_key": shown_key(decode_key(r.get("last_key"))),
                "after": shown_key(decode_key(r["after"])), "through": shown_key(decode_key(r["through"]))}
        if r["differing_rows"]:
            kinds = sorted({d["kind"] for d in r["differences"]})
            differences.append({"table": r["table"], "kind": "rows_differ" if kinds == ["rows_differ"] else "rows",
                                **span, "differing_rows": r["differing_rows"],
                                "rows": [{"key": shown_key(decode_key(d["key"])), "kind": d["kind"]}
                                         for d in r["differences"]],
                                "detail": r["how"]})
        if r["unverified"]:
            unverified.append({"table": r["table"], **span, "rows": r["unverified"], "detail": r["how"]})
    incomplete = [t["table"] for t in per_table.values() if not t["complete"]]
    rows = sum(t["rows"] for t in per_table.values())
    return {
        "clean": not differences and not unverified and not incomplete,
        "primary": facts.get("primary"),
        "replica": facts.get("replica"),
        "full": not facts.get("selection"),
        "tables": [{k: v for k, v in t.items() if k != "complete"} for t in per_table.values()],
        "differences": differences,
        "unverified": unverified,
        "incomplete": incomplete,
        "warnings": facts.get("warnings", []),
        "totals": {"tables": len(per_table), "rows": rows, "chunks": sum(t["chunks"] for t in per_table.values()),
                   "rechecked_chunks": rechecked, "seconds": round(wall, 3),
                   "rows_per_s": round(rows / wall) if wall > 0 else None},
    }


def sentence(summary: dict[str, Any]) -> str:
    """One line: what was compared and what differs."""
    t = summary["totals"]
    head = f"{t['tables']} table(s), {t['rows']:,} rows in {t['chunks']} chunk(s) compared"
    if summary["clean"]:
        return f"{head}: no difference between {summary['primary']} and {summary['replica']}"
    parts = []
    if summary["differences"]:
        names = sorted({d["table"] for d in summary["differences"]})
        parts.append(f"{len(summary['differences'])} difference(s) in {', '.join(names)}")
    if summary["unverified"]:
        parts.append(f"{sum(u['rows'] for u in summary['unverified'])} row(s) could not be confirmed")
    if summary.get("incomplete"):
        parts.append(f"not compared to the end: {', '.join(summary['incomplete'])}")
    return f"{head}: " + "; ".join(parts)
