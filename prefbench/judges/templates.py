"""A judge protocol's official prompt: fetched at its pinned commit, checked, cached; never copied
into prefbench.

:func:`template` returns the prompt text and a record of where it came from. The source file
(:class:`~prefbench.judges.base.TemplateSource`) is read from GitHub's raw host
(``PREFBENCH_GITHUB_RAW`` overrides the base URL: a mirror, or a test server on 127.0.0.1) or from a
hub repository's ``resolve`` URL (``HF_ENDPOINT``), checked against its pinned sha256 and kept in
``$PREFBENCH_CACHE/judges/<protocol>/<commit>/<file>`` (default ``~/.cache/prefbench``). A cached
file is checked again on every use. Offline, the error names the URL, the sha256 and the exact
path to put the file at. ``template=FILE`` (``template_file``) uses a file of your own instead.

A prompt held in a Python source file is one string literal of it, found by its first characters
(``TemplateSource.literal``) and read with :mod:`ast` (never imported or run); the fields of an
f-string become ``{name}`` placeholders.
"""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path
from urllib.parse import quote

from prefbench.errors import DataError, MissingDataError, UsageError
from prefbench.judges.base import JudgeProtocol, TemplateSource

GITHUB_RAW = "https://raw.githubusercontent.com"
HUB = "https://huggingface.co"


def cache_dir() -> Path:
    """``$PREFBENCH_CACHE/judges`` (default ``~/.cache/prefbench/judges``)."""
    return Path(os.environ.get("PREFBENCH_CACHE", Path.home() / ".cache" / "prefbench")).expanduser() / "judges"


def source_url(src: TemplateSource) -> str:
    """Where ``src`` is fetched from (the environment's base URL overrides applied)."""
    if src.on_github:
        base = os.environ.get("PREFBENCH_GITHUB_RAW") or GITHUB_RAW
        return f"{base.rstrip('/')}/{src.repo.removeprefix('github:')}/{src.commit}/{quote(src.path)}"
    base = os.environ.get("HF_ENDPOINT") or HUB
    return f"{base.rstrip('/')}/{src.repo}/resolve/{src.commit}/{quote(src.path)}"


def cached_path(protocol: str, src: TemplateSource) -> Path:
    return cache_dir() / protocol / (src.commit or "unpinned") / Path(src.path).name


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_source(protocol: str, src: TemplateSource) -> Path:
    """The pinned source file in the cache, fetched (and checked) when it is not there yet."""
    if not src.verified:
        raise UsageError(f"judge protocol {protocol!r}: its template source {src.describe()} has no verified "
                         "commit and sha256, so prefbench does not fetch it; pass template=FILE")
    local = cached_path(protocol, src)
    if not local.is_file():
        from prefbench.pinned_download import fetch_url

        url = source_url(src)
        try:
            fetch_url(url, local)
        except MissingDataError:
            raise MissingDataError(
                f"judge protocol {protocol!r}: cannot fetch its prompt from {url}. Put that file (sha256 "
                f"{src.sha256}) at {local}, or pass template=FILE") from None
    got = _sha256(local.read_bytes())
    if got != src.sha256:
        local.unlink(missing_ok=True)
        raise DataError(f"has sha256 {got}, pinned {src.sha256} ({src.describe()}): removed it; the source moved "
                        "or the download was damaged. Fetch it again, or pass template=FILE", local)
    return local


def extract_literal(source: str, start: str, where: str = "<source>") -> str:
    """The first string literal of Python ``source`` whose text begins with ``start`` (f-string
    fields rendered as ``{expression}``); a clear error when there is none."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise DataError(f"is not Python that prefbench can read ({exc.msg}, line {exc.lineno})", where) from None
    for node in ast.walk(tree):
        text = _literal_text(node)
        if text is not None and text.startswith(start):
            return text
    raise DataError(f"has no string literal starting {start!r}", where)


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + ast.unparse(value.value) + "}")
        return "".join(parts)
    return None


def template(protocol: JudgeProtocol, template_file: str | Path | None = None) -> tuple[str, dict]:
    """(prompt text, record) for ``protocol``: from ``template_file`` when given, else its pinned
    source. The record says where the text came from and holds the text's sha256 (what a run stores)."""
    if template_file is not None:
        path = Path(template_file)
        if not path.is_file():
            raise DataError("template file not found", path)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError("template file is not UTF-8 text", path) from None
        return text, {"source": "file", "path": str(path), "sha256": _sha256(raw),
                      "text_sha256": _sha256(text.encode())}
    src = protocol.template
    if src is None:
        raise UsageError(f"judge protocol {protocol.name!r} names no template source; pass template=FILE")
    local = fetch_source(protocol.name, src)
    raw = local.read_bytes()
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError("is not UTF-8 text", local) from None
    text = extract_literal(body, src.literal, str(local)) if src.literal else body
    return text, {"source": "pinned", "repo": src.repo, "commit": src.commit, "path": src.path,
                  "sha256": src.sha256, "literal": src.literal, "text_sha256": _sha256(text.encode())}
