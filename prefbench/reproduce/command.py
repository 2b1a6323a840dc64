"""``prefbench reproduce``: list the published tables, run them, print published vs measured."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

from prefbench.errors import UsageError


def number(x: float | None, scale: float, signed: bool = False) -> str:
    if x is None:
        return ""
    digits = 1 if scale >= 100 else 3
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def row_cells(o: Mapping, scale: float) -> list[str]:
    """published, measured (CI), verdict and detail of one stored outcome, in the table's units."""
    measured = ""
    if o.get("measured") is not None:
        measured = (f"{number(o['measured'] * scale, scale)} [{number(o['ci_low'] * scale, scale)}, "
                    f"{number(o['ci_high'] * scale, scale)}]")
    detail = o.get("reason", "")
    if o.get("gap") is not None and o.get("verdict") != "reproduced":
        detail = f"gap {number(o['gap'], scale, signed=True)}" + (f"; {detail}" if detail else "")
    published = "" if o.get("published") is None else f"{o['published']:g}"
    return [str(o.get("row", "")), published, measured, str(o.get("verdict", "")), detail]


HEAD = ["row", "published", "measured [95% CI]", "verdict", "gap / what is missing"]


def table_text(rec: Mapping) -> str:
    scale = float(rec.get("scale") or 1)
    lines = [f"{rec['table']}: {rec['title']}", f"  source: {rec['source']} (read {rec['read']})",
             f"  {rec['dataset']}/{rec['split']}, convention {rec['convention']}"
             + (" (percent)" if scale == 100 else "")]
    cells = [row_cells(o, scale) for o in rec["rows"]]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if i < 4 else 0 for i, h in enumerate(HEAD)]
    fmt = "  ".join(f"{{:<{w}}}" if w else "{}" for w in widths)
    lines += ["", "  " + fmt.format(*HEAD)]
    lines += ["  " + fmt.format(*c) for c in cells]
    from prefbench.reproduce.run import counts

    lines += ["", "  " + ", ".join(f"{n} {v}" for v, n in counts(rec["rows"]).items())]
    return "\n".join(lines)


def list_text() -> str:
    from prefbench.reproduce import builtin_tables, load_table

    lines = ["Published tables (prefbench reproduce NAME):", ""]
    for name in sorted(builtin_tables()):
        t = load_table(name)
        lines.append(f"  {name:<22} {len(t.rows):>2} rows  {t.dataset}/{t.split}, {t.convention}")
        lines.append(f"  {'':<22} {t.title}")
        lines.append(f"  {'':<22} source: {t.source} (read {t.read})")
    return "\n".join(lines)


def cmd_reproduce(args) -> int:
    from prefbench.reproduce import builtin_tables, load_table, validate
    from prefbench.reproduce.run import record, reproduce, write

    if args.list:
        if args.json:
            tables = [load_table(n) for n in sorted(builtin_tables())]
            print(json.dumps([{"name": t.name, "title": t.title, "source": t.source, "read": t.read,
                               "dataset": t.dataset, "split": t.split, "convention": t.convention,
                               "rows": [r.name for r in t.rows]} for t in tables], indent=2))
        else:
            print(list_text())
        return 0
    names = sorted(builtin_tables()) if args.all else list(args.tables)
    if not names:
        raise UsageError("name a table (prefbench reproduce --list shows them), or give --all")
    if args.only and len(names) != 1:
        raise UsageError("--only picks a row of one table: name one table")
    tables = [load_table(n) for n in names]
    missed = 0
    out = []
    for table in tables:
        for problem in validate(table):
            print(f"prefbench: warning: {table.name}: {problem}", file=sys.stderr)
        outcomes = reproduce(table, args.data_dir, args.results, args.only, args.model, progress=not args.no_progress)
        path = write(table, outcomes, args.results)
        rec = record(table, outcomes, args.results)
        missed += sum(o.verdict in ("outside CI", "error") for o in outcomes)
        out.append(rec)
        if not args.json:
            print(table_text(rec))
            print(f"  stored: {path}\n")
    if args.json:
        print(json.dumps(out, indent=2))
    if args.strict and missed:
        print(f"prefbench: {missed} row(s) ran and did not reproduce (--strict)", file=sys.stderr)
        return 1
    return 0
