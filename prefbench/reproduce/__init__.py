"""Published tables as acceptance tests: published vs measured, with CIs, row by row.

A table (``prefbench/reproduce/tables/<name>.json``, or any JSON file of the same shape) names its
source, the dataset, split and convention its numbers were measured on, and one row per reward
model: the published number and how to run it in prefbench (scorer, model and revision, options,
tolerance). :func:`prefbench.reproduce.run.reproduce` runs every row it can through ordinary
resumable runs (a finished row is answered from its run folder) and gives each a verdict:

- ``reproduced``: the published value lies in the measured 95% CI (or within the row's stated
  absolute tolerance, for sampled judges);
- ``outside CI``: it does not; the gap (measured - published) is given;
- ``not run``: what is missing, exactly (the scorer in this prefbench, an install extra, the
  data files, the weights);
- ``error``: the run failed for another reason (the message is kept);
- ``reference``: a row that is not a scorer (e.g. a single human's agreement), shown for context.

The verdicts are stored as ``<results>/reproduce/<table>.json`` (no timestamps: rerunning a
reproduced table rewrites the same bytes), which ``prefbench report`` shows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from prefbench.errors import UsageError

TABLE_FIELDS = {"name", "title", "source", "read", "dataset", "split", "convention", "scale", "notes", "rows"}
ROW_FIELDS = {"name", "published", "scorer", "model", "revision", "options", "rollouts", "tolerance", "note",
              "reference", "pending", "needs_model", "dataset", "split", "convention", "ambiguity"}
VERDICTS = ("reproduced", "outside CI", "not run", "error", "reference")


@dataclass(frozen=True)
class Row:
    name: str
    published: float | None
    scorer: str | None = None
    model: str | None = None
    revision: str | None = None
    options: dict = field(default_factory=dict)
    rollouts: int | None = None
    #: None: the published value must lie in the measured 95% CI; a number: |measured - published|
    #: (in the table's units) at most this
    tolerance: float | None = None
    note: str = ""
    #: a row that is no scorer (a human's agreement): shown, never run
    reference: str = ""
    #: what this prefbench still lacks to run the row (the scorer, the protocol); not run until then
    pending: str = ""
    #: weights with no public id (a paper's own checkpoint): the row runs only with ``--model``
    needs_model: str = ""
    dataset: str | None = None
    split: str | None = None
    convention: str | None = None
    #: where the source is ambiguous (split, data version, policy) and the choice made
    ambiguity: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    source: str
    read: str
    dataset: str
    split: str
    convention: str
    scale: float
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = ()
    path: str = ""

    def where(self, row: Row) -> tuple[str, str, str]:
        return row.dataset or self.dataset, row.split or self.split, row.convention or self.convention


def _bad(path, msg: str) -> UsageError:
    return UsageError(f"reproduce table {path}: {msg}")


def parse_table(data: Any, path: str) -> Table:
    """A table from its JSON object; a clear error naming the field for a malformed one."""
    if not isinstance(data, dict):
        raise _bad(path, "expected a JSON object")
    unknown = set(data) - TABLE_FIELDS
    if unknown:
        raise _bad(path, f"unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("name", "title", "source", "read", "dataset", "split", "convention"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise _bad(path, f"{key!r} must be a non-empty string")
    scale = data.get("scale", 1)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise _bad(path, f"scale must be a positive number (100 for percentages), got {scale!r}")
    if not isinstance(data.get("rows"), list) or not data["rows"]:
        raise _bad(path, "rows must be a non-empty list")
    rows, names = [], set()
    for k, raw in enumerate(data["rows"]):
        where = f"row {k}"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
            raise _bad(path, f"{where}: needs a 'name'")
        unknown = set(raw) - ROW_FIELDS
        if unknown:
            raise _bad(path, f"{where} ({raw['name']}): unknown field(s) {', '.join(sorted(unknown))}")
        if raw["name"] in names:
            raise _bad(path, f"{where}: duplicate row name {raw['name']!r}")
        names.add(raw["name"])
        pub = raw.get("published")
        if pub is not None and (isinstance(pub, bool) or not isinstance(pub, (int, float)) or not math.isfinite(pub)):
            raise _bad(path, f"{where} ({raw['name']}): published must be a number or null, got {pub!r}")
        if not raw.get("reference") and not raw.get("scorer"):
            raise _bad(path, f"{where} ({raw['name']}): needs a 'scorer' (or 'reference' for a row that is none)")
        if not isinstance(raw.get("options", {}), dict):
            raise _bad(path, f"{where} ({raw['name']}): options must be an object")
        tol = raw.get("tolerance")
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol < 0):
            raise _bad(path, f"{where} ({raw['name']}): tolerance must be a non-negative number or null")
        rows.append(Row(**{**raw, "options": dict(raw.get("options", {}))}))
    return Table(data["name"], data["title"], data["source"], data["read"], data["dataset"], data["split"],
                 data["convention"], float(scale), tuple(rows), tuple(data.get("notes", ())), path)


def builtin_tables() -> dict[str, Path]:
    """The tables that ship with prefbench, by name."""
    folder = files("prefbench.reproduce") / "tables"
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".json")}


def load_table(name_or_path: str) -> Table:
    """A shipped table by name, or a table file by path."""
    shipped = builtin_tables()
    if name_or_path in shipped:
        path = shipped[name_or_path]
    else:
        path = Path(name_or_path)
        if not path.suffix == ".json" or not path.is_file():
            from difflib import get_close_matches

            close = get_close_matches(name_or_path, list(shipped), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; tables: {', '.join(sorted(shipped))}"
            raise UsageError(f"no reproduce table {name_or_path!r}{hint} (or give a table file's path)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(path, f"cannot read it: {exc}") from None
    table = parse_table(data, str(path))
    if path in shipped.values() and table.name != path.stem:
        raise _bad(path, f"its name {table.name!r} differs from its file name")
    return table


def validate(table: Table) -> list[str]:
    """Problems with a table against this prefbench's registries (empty: every runnable row's
    scorer, dataset, split, convention and options resolve)."""
    from prefbench.data import dataset_info
    from prefbench.metrics import lookup_convention
    from prefbench.registry import lookup, options

    problems = []
    for row in table.rows:
        if row.reference or row.pending:
            continue
        dataset, split, convention = table.where(row)
        try:
            info = dataset_info(dataset)
            if split not in info.splits:
                problems.append(f"{row.name}: {dataset} has no split {split!r}")
            lookup_convention(convention)
            entry = lookup(row.scorer)
            if entry.installed:
                accepted = options(entry.load())
                bad = sorted(set(row.options) - set(accepted))
                if bad:
                    problems.append(f"{row.name}: scorer {row.scorer} takes no option(s) {', '.join(bad)}")
        except UsageError as exc:
            problems.append(f"{row.name}: {exc}")
    return problems


@dataclass
class Outcome:
    row: str
    published: float | None
    verdict: str
    measured: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    gap: float | None = None
    reason: str = ""
    run_dir: str | None = None
    scorer: str | None = None
    model: str | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != ""}


def judge(row: Row, scale: float, measured: float, lo: float, hi: float) -> tuple[str, float]:
    """The verdict and gap (measured - published, in the table's units) of a row that ran."""
    gap = measured * scale - row.published
    if row.tolerance is not None:
        ok = abs(gap) <= row.tolerance + 1e-9
    else:
        ok = lo * scale - 1e-9 <= row.published <= hi * scale + 1e-9
    return ("reproduced" if ok else "outside CI"), gap


__all__ = ["Outcome", "Row", "Table", "VERDICTS", "builtin_tables", "judge", "load_table", "parse_table", "validate"]
