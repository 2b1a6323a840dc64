"""Shared reading helpers: JSON, JSONL and text with errors that name file and line. The dataset
loaders use them, and so do the readers of other files users give (run.json in the store, CI
baselines, scores and judge-output files, generator prompt sets)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from prefbench.errors import DataError, MissingDataError


def require_file(path: Path, dataset: str, what: str) -> Path:
    if not path.is_file():
        raise MissingDataError(
            f"{dataset}: {path} not found. {what} (No hub is contacted; put the files there and rerun.)"
        )
    return path


def read_text(path: Path) -> str:
    """A text file as UTF-8; an unreadable or non-UTF-8 file is a DataError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start}: {exc.reason})", path) from None
    except OSError as exc:
        raise DataError(f"cannot read ({exc.strerror or exc})", path) from None


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:  # json keeps the last silently: an item (or its ratings) would vanish
            raise _DuplicateKey(key)
        out[key] = value
    return out


#: a ``\\uD800``-``\\uDFFF`` escape: JSON can spell a lone surrogate, which UTF-8 cannot hold
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_surrogate(obj: Any) -> bool:
    if isinstance(obj, str):
        try:
            obj.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(obj, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_has_surrogate(v) for v in obj)
    return False


def loads(text: str, path: Path, line: int | None = None) -> Any:
    """``json.loads`` whose failures (bad syntax, nesting too deep for the parser, a number too
    long to convert, a key twice in one object, a lone surrogate such as ``"\\ud800"``, which
    no UTF-8 file or hash can hold) are a DataError naming file and line."""
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys)
        if "\\u" in text and _SURROGATE_ESCAPE.search(text) and _has_surrogate(obj):
            at = line if line is not None else text.count("\n", 0, _SURROGATE_ESCAPE.search(text).start()) + 1
            raise DataError("a string holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which "
                            "is not Unicode text", path, at)
        return obj
    except _DuplicateKey as exc:
        key = str(exc.args[0])
        found = _key_lines(text, key) if line is None else []
        at = f" (lines {', '.join(map(str, found))})" if len(found) > 1 else ""
        raise DataError(f"key {key[:80]!r} appears twice in one JSON object{at}; JSON would keep only the last, so "
                        "refused", path, line) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg}, column {exc.colno})", path,
                        exc.lineno if line is None else line) from None
    except RecursionError:
        raise DataError("JSON nested too deeply to read", path, line) from None
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise DataError(f"invalid JSON ({exc})", path, line) from None


def _key_lines(text: str, key: str) -> list[int]:
    """The lines where ``"key":`` appears (to name both places of a duplicate key)."""
    needle = json.dumps(key)
    return [n for n, row in enumerate(text.split("\n"), 1) if needle + ":" in row.replace('" :', '":')][:5]


def read_json(path: Path) -> Any:
    return loads(read_text(path), path)


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a JSONL file as (line number, object); blank lines are skipped."""
    rows = []
    for lineno, line in enumerate(read_text(path).split("\n"), 1):  # not splitlines: U+2028 may sit in a string
        if not line.strip():
            continue
        obj = loads(line, path, lineno)
        if not isinstance(obj, dict):
            raise DataError("expected a JSON object", path, lineno)
        rows.append((lineno, obj))
    return rows


def check_ranks(ranks: Any, n_images: int, path: Path, where: str, line: int | None = None) -> list[float]:
    if not isinstance(ranks, list) or len(ranks) != n_images:
        raise DataError(f"{where}: expected {n_images} ranks, got {ranks!r}", path, line)
    out = []
    for r in ranks:
        if isinstance(r, bool) or not isinstance(r, (int, float)):
            raise DataError(f"{where}: rank {r!r} is not a number", path, line)
        if not math.isfinite(r):  # NaN/inf would be ordered by list position, convention by convention
            raise DataError(f"{where}: rank {r!r} is not a finite number", path, line)
        out.append(r)
    return out


def check_item_id(value: Any, seen: dict[str, Any], path: Path, where: str, key: str,
                  line: int | None = None) -> str:
    """An item id as a string: a string or an integer (never null, a bool or a float), unique in
    the file as a string (``5`` and ``"5"`` are the same id, and would be merged silently)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: {key} must be a string or an integer, got {value!r}", path, line)
    text = str(value)
    if text in seen:
        raise DataError(f"{where}: duplicate {key} {text!r} (first at {seen[text]})", path, line)
    seen[text] = where if line is None else f"line {line}"
    return text


def parquet_files(data_dir: Path, split: str, dataset: str, shard_globs: tuple[str, ...] = ()) -> list[Path]:
    """``<data-dir>/<split>.parquet``, else the hub's shards (each glob relative to the data
    dir, e.g. ``image_generation/test_v1-*.parquet``; sorted by name), else MissingDataError."""
    single = data_dir / f"{split}.parquet"
    if single.is_file():
        return [single]
    for pattern in shard_globs:
        shards = sorted(data_dir.glob(pattern))
        if shards:
            return shards
    where = " or ".join(str(data_dir / g) for g in shard_globs)
    raise MissingDataError(
        f"{dataset}: no parquet for split {split!r}: put {single}" + (f" or shards {where}" if where else "")
        + f" there (or run `prefbench download {dataset} --split {split} --data-dir {data_dir}`)."
    )


def read_parquet(paths: list[Path], columns: list[str]) -> list[tuple[Path, int, dict[str, Any]]]:
    """Rows of parquet files as (file, row number, {column: value}); a bad file or a missing
    column is a DataError naming the file."""
    import pyarrow.parquet as pq

    rows = []
    for path in paths:
        try:
            table = pq.read_table(path, columns=columns)
        except Exception as exc:  # pyarrow raises several types for bad files / missing columns
            raise DataError(f"cannot read parquet with columns {columns} ({exc})", path) from None
        data = table.to_pydict()
        for row in range(table.num_rows):
            rows.append((path, row, {c: data[c][row] for c in columns}))
    return rows


def image_cell(value: Any, path: Path, where: str) -> bytes:
    """The encoded bytes of a parquet image cell: raw bytes or the ``{bytes, path}`` struct the
    hub's Image feature writes. Anything else (a missing image included) is a DataError."""
    if isinstance(value, dict):
        value = value.get("bytes")
    if isinstance(value, (bytes, bytearray)) and value:
        return bytes(value)
    raise DataError(f"{where}: no image bytes (expected bytes or a {{bytes, path}} struct)", path)


def check_text(obj: dict, key: str, path: Path, where: str, line: int | None = None) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise DataError(f"{where}: {key!r} must be a non-empty string, got {value!r}"[:200], path, line)
    return value
