"""What ``prefbench bench-generators`` reads: the prompt set (:func:`read_prompts`) and the
images folder ``DIR/<generator>/<prompt_id>_<k>.<ext>`` (:func:`scan_images`), with every file
that does not fit reported, never read. See :mod:`prefbench.generators` and docs/generators.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefbench.errors import DataError, UsageError
from prefbench.generator_stats import NAMED

IMAGE_EXTS = ("png", "jpg", "jpeg", "webp")
NAME_RE = re.compile(r"^(?P<pid>.+)_(?P<k>[0-9]+)\.(?P<ext>png|jpe?g|webp)$", re.IGNORECASE)
PROBLEMS = {
    "unmatched": "not <prompt_id>_<k>.<png|jpg|jpeg|webp> inside a generator folder",
    "unknown_prompt": "names a prompt id that the prompts file does not have",
    "outside": "resolves outside the images folder (a symlink); never read",
    "duplicate": "a second file for the same generator, prompt and k",
    "not_a_file": "not a regular file (a folder, FIFO or device)",
    "empty_folder": "a generator folder without one usable image",
}


# -- the prompts file ------------------------------------------------------------------------------
@dataclass
class Prompts:
    ids: list[str]
    text: dict[str, str]
    format: str
    file_sha256: str
    content_hash: str
    #: int value -> id, for ids written as decimal numbers (00012 in a file name matches id 12)
    numeric: dict[int, str] = field(default_factory=dict)

    def match(self, pid: str) -> str | None:
        """The prompt id a file name's id part stands for: the id itself, or (for decimal ids)
        the id of the same number, so ``000012_0.png`` matches id ``12`` and the other way round."""
        if pid in self.text:
            return pid
        if pid.isascii() and pid.isdigit():
            return self.numeric.get(int(pid))
        return None


def read_prompts(path: str | Path) -> Prompts:
    """The prompt set of ``path`` by its suffix: ``.json`` (a list of ``{"id"|"prompt_id",
    "prompt"}`` objects, a list of prompt strings (id = index), or one ``{id: prompt}`` object),
    ``.jsonl`` (one such object a line) or
    anything else as text (one prompt a line, id = the 0-based line number; blank lines are
    skipped and keep their number). Duplicate ids and empty prompts are DataErrors."""
    from prefbench.data._io import check_item_id, check_text, loads, read_jsonl, read_text

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such prompts file")
    raw = path.read_bytes()
    seen: dict[str, Any] = {}
    pairs: list[tuple[str, str]] = []
    suffix = path.suffix.lower()
    if suffix == ".json":
        data = loads(read_text(path), path)
        fmt = "json"
        if isinstance(data, dict):
            entries = [({"id": k, "prompt": v}, f"key {k!r}", None) for k, v in data.items()]
        elif isinstance(data, list):  # objects, or bare prompt strings (HPSv2's <style>.json): id = index
            entries = [({"id": n, "prompt": e} if isinstance(e, str) else e, f"entry {n}", None)
                       for n, e in enumerate(data)]
        else:
            raise DataError('expected a JSON list of {"id": ..., "prompt": ...} objects (or {id: prompt})', path)
    elif suffix == ".jsonl":
        fmt = "jsonl"
        entries = [(obj, f"line {line}", line) for line, obj in read_jsonl(path)]
    else:
        fmt = "text"
        entries = [({"id": n, "prompt": line.strip()}, f"line {n + 1}", n + 1)
                   for n, line in enumerate(read_text(path).split("\n")) if line.strip()]
    for obj, where, line in entries:
        if not isinstance(obj, dict):
            raise DataError(f'{where}: expected an object with "id" and "prompt"', path, line)
        key = "prompt_id" if "prompt_id" in obj else "id"
        pid = check_item_id(obj.get(key), seen, path, where, key, None)
        pairs.append((pid, check_text(obj, "prompt", path, where)))
    if not pairs:
        raise DataError("no prompts", path)
    text = dict(pairs)
    numeric: dict[int, str] = {}
    clash: set[int] = set()
    for pid in text:
        if pid.isascii() and pid.isdigit():
            value = int(pid)
            if value in numeric:
                clash.add(value)
            numeric[value] = pid
    content = hashlib.sha256(json.dumps(pairs, ensure_ascii=False).encode()).hexdigest()
    return Prompts([p for p, _ in pairs], text, fmt, hashlib.sha256(raw).hexdigest(), content,
                   {k: v for k, v in numeric.items() if k not in clash})


# -- the images folder -----------------------------------------------------------------------------
@dataclass(frozen=True)
class GenImage:
    generator: str
    prompt_id: str
    k: int
    rel: str  # DIR-relative path, posix
    size: int

    @property
    def item_id(self) -> str:
        return f"{self.generator}/{self.prompt_id}"


@dataclass
class Scan:
    root: Path
    images: list[GenImage]
    generators: list[str]
    #: kind of problem -> DIR-relative paths (see PROBLEMS)
    problems: dict[str, list[str]]

    def content_hash(self) -> str:
        """sha256 of every image's DIR-relative path and size (not its bytes)."""
        h = hashlib.sha256()
        for im in sorted(self.images, key=lambda i: i.rel):
            h.update(f"{im.rel}\0{im.size}\n".encode())
        return h.hexdigest()

    def problems_json(self) -> dict[str, dict]:
        return {kind: {"count": len(paths), "first": paths[:NAMED], "what": PROBLEMS[kind]}
                for kind, paths in self.problems.items() if paths}


def scan_images(images: str | Path, prompts: Prompts) -> Scan:
    """Every ``DIR/<generator>/<prompt_id>_<k>.<ext>`` whose id is in ``prompts``; everything
    else in DIR and its generator folders is a reported problem. A path that resolves outside DIR
    (a symlink, a symlinked folder) is never read."""
    from prefbench.data.images import is_inside

    root = Path(images)
    if not root.is_dir():
        raise UsageError(f"{root}: no such images folder (expected {root}/<generator>/<prompt_id>_<k>.png)")
    base = os.path.realpath(root)
    problems: dict[str, list[str]] = {kind: [] for kind in PROBLEMS}
    found: dict[tuple[str, str, int], GenImage] = {}
    generators = []
    for top in sorted(os.scandir(root), key=lambda e: e.name):
        real = os.path.realpath(top.path)
        if not is_inside(real, base):
            problems["outside"].append(top.name)
            continue
        if not top.is_dir():
            problems["unmatched"].append(top.name)
            continue
        has_any = False
        for entry in sorted(os.scandir(top.path), key=lambda e: e.name):
            rel = f"{top.name}/{entry.name}"
            m = NAME_RE.match(entry.name)
            if not m:
                problems["unmatched"].append(rel)
                continue
            real = os.path.realpath(entry.path)
            if not is_inside(real, base):
                problems["outside"].append(rel)
                continue
            try:
                st = os.stat(real)
            except OSError:
                problems["not_a_file"].append(rel)  # a dangling link
                continue
            if not stat.S_ISREG(st.st_mode):
                problems["not_a_file"].append(rel)
                continue
            pid = prompts.match(m["pid"])
            if pid is None:
                problems["unknown_prompt"].append(rel)
                continue
            key = (top.name, pid, int(m["k"]))
            if key in found:
                problems["duplicate"].append(rel)
                continue
            found[key] = GenImage(top.name, pid, int(m["k"]), rel, st.st_size)
            has_any = True
        if has_any:
            generators.append(top.name)
        else:
            problems["empty_folder"].append(top.name)
    order = {pid: n for n, pid in enumerate(prompts.ids)}
    images = sorted(found.values(), key=lambda i: (i.generator, order[i.prompt_id], i.k))
    return Scan(root, images, generators, problems)


# -- the run -----------------------------------------------------------------------------------------
