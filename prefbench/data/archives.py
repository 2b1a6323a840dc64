"""Unpacking downloaded archives inside a data dir: zip, tar (gz/bz2/xz) and tars split in parts.

Nothing is written outside the destination: a member with an absolute path or a ``..``
component, a link that points outside, or a device or FIFO refuses the archive, naming it and
the member. A zip is checked whole before anything of it is written, a tar member by member.
The unpacked size is capped (``PREFBENCH_MAX_UNPACK_BYTES``, 200 GiB by default), from what the
archive declares and from the bytes actually written. Used by ``prefbench download``
(:mod:`prefbench.data.download`).
"""

from __future__ import annotations

import io
import os
import re
import stat
import tarfile
import zipfile
from pathlib import Path

from prefbench.errors import DataError, UsageError

DEFAULT_MAX_UNPACK_BYTES = 200 * 1024 ** 3
CHUNK = 1024 * 1024
#: a tar in parts: ``NAME.tar.gz.00``, ``NAME.tar.part1``, ``NAME.tgz.aa`` ...
PART = re.compile(r"^(?P<stem>.+\.(?:tar|tgz|tbz2|txz|tar\.gz|tar\.bz2|tar\.xz))\.(?:part[-_]?)?(?P<index>\d+|[a-z]{2,3})$",
                  re.IGNORECASE)

def max_unpack_bytes() -> int:
    value = os.environ.get("PREFBENCH_MAX_UNPACK_BYTES")
    if not value:
        return DEFAULT_MAX_UNPACK_BYTES
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise UsageError(f"PREFBENCH_MAX_UNPACK_BYTES must be a whole number of bytes >= 1, got {value!r}")
    return limit


def archive_groups(paths: list[str]) -> dict[str, list[str]]:
    """``{archive: [its files]}``: a tar split in parts (``X.tar.gz.00``, ``.01``, ...) is one archive
    of its parts in order; any other file is an archive of its own."""
    groups: dict[str, list[tuple]] = {}
    for path in paths:
        m = PART.match(path)
        if m:
            index = m["index"]
            groups.setdefault(m["stem"], []).append(((0, int(index), "") if index.isdigit() else (1, 0, index), path))
        else:
            groups.setdefault(path, []).append(((0, 0, ""), path))
    return {stem: [path for _, path in sorted(parts)] for stem, parts in sorted(groups.items())}


def check_parts(name: str, parts: list[Path], sizes: list[int | None] | None = None) -> None:
    """A tar in parts is whole before anything is unpacked: every part named like the first
    (``X.tar.gz.00``, ``.01``, ...), their indices consecutive with no gap and no duplicate (``.1``
    and ``.01``), and each file's size the one the manifest records. DataError naming the parts."""
    if sizes is not None:
        for path, size in zip(parts, sizes):
            try:
                actual = path.stat().st_size
            except OSError as exc:
                raise DataError(f"archive {name}: part {path.name} cannot be read ({exc.strerror or exc}); nothing "
                                "unpacked", path) from None
            if size is not None and actual != size:
                raise DataError(f"archive {name}: part {path.name} has {actual} bytes, the manifest records {size}; "
                                "nothing unpacked (fetch it again)", path)
    if len(parts) < 2:
        return
    indices = []
    for path in parts:
        m = PART.match(path.name)
        if not m:
            raise DataError(f"archive {name}: {path.name} is not named as a part (NAME.tar.gz.00, .01, ...); nothing "
                            "unpacked", path)
        indices.append((path, m["stem"], m["index"].lower()))
    if len({stem for _, stem, _ in indices}) > 1:
        raise DataError(f"archive {name}: its parts name different archives "
                        f"({', '.join(sorted({stem for _, stem, _ in indices}))}); nothing unpacked", parts[0])
    kinds = {index.isdigit() for _, _, index in indices}
    if len(kinds) > 1:
        raise DataError(f"archive {name}: its parts mix numbered and lettered suffixes "
                        f"({', '.join(q.name for q in parts)}); nothing unpacked", parts[0])

    def number(index: str) -> int:
        if index.isdigit():
            return int(index)
        value = 0
        for ch in index:
            value = value * 26 + ord(ch) - ord("a")
        return value

    seen: dict[int, Path] = {}
    for path, _, index in indices:
        n = number(index)
        if n in seen:
            raise DataError(f"archive {name}: parts {seen[n].name} and {path.name} are the same part (index {n}); "
                            "nothing unpacked", path)
        seen[n] = path
    ordered = sorted(seen)
    first_ok = ordered[0] in ((0, 1) if kinds == {True} else (0,))  # .00 or .01 / .aa
    if not first_ok or ordered[-1] - ordered[0] != len(ordered) - 1:
        start = 0 if kinds != {True} or ordered[0] == 0 else 1
        missing = sorted(set(range(start, ordered[-1] + 1)) - set(ordered))
        raise DataError(f"archive {name}: its parts are not consecutive (missing part index "
                        f"{', '.join(map(str, missing[:5]))}{' ...' if len(missing) > 5 else ''} among "
                        f"{', '.join(q.name for q in parts)}); nothing unpacked", parts[0])
    if [seen[n] for n in ordered] != list(parts):
        raise DataError(f"archive {name}: its parts are given out of order ({', '.join(q.name for q in parts)}); "
                        "nothing unpacked", parts[0])


def unpack(dest: str | Path, parts: list[str | Path], *, name: str | None = None, max_bytes: int | None = None,
           sizes: list[int | None] | None = None) -> dict:
    """Unpack an archive (a zip, or a tar whose parts are concatenated in order) into ``dest``,
    confined to it. Returns ``{"members": n, "bytes": b}``; raises :class:`DataError` naming the
    archive and the member it refuses. ``sizes``: each part's size as the manifest records it,
    checked (with the parts' names: :func:`check_parts`) before anything is unpacked."""
    dest = Path(dest)
    parts = [Path(q) for q in parts]
    name = name or str(parts[0])
    check_parts(name, parts, sizes)
    dest.mkdir(parents=True, exist_ok=True)
    limit = max_bytes if max_bytes is not None else max_unpack_bytes()
    if len(parts) == 1 and zipfile.is_zipfile(parts[0]):
        return _unpack_zip(parts[0], dest, name, limit)
    try:
        return _unpack_tar(parts, dest, name, limit)
    except (tarfile.ReadError, tarfile.CompressionError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"archive {name}: not a readable zip or tar archive ({exc})", parts[0]) from None


class _Refused(Exception):
    pass


#: what tarfile's "data" filter raises for a member it refuses (Python with extraction filters)
_FILTER_ERROR = getattr(tarfile, "FilterError", _Refused)


def _member_path(member: str) -> str | None:
    """The member's path relative to the destination, or None for the archive's root entry;
    _Refused for an absolute path or a ``..`` component."""
    text = member.replace("\\", "/")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text) or "\x00" in text:
        raise _Refused("it has an absolute path")
    parts = [q for q in text.split("/") if q not in ("", ".")]
    if ".." in parts:
        raise _Refused("its path has a '..' component")
    return "/".join(parts) or None


def _inside(path: str, root: str) -> bool:
    from prefbench.provenance import relative_inside

    return relative_inside(os.path.realpath(path), root) is not None


def _link_target_inside(rel: str, target: str, root: str) -> None:
    if not target or os.path.isabs(target) or target.startswith("\\") or re.match(r"^[A-Za-z]:", target):
        raise _Refused(f"it is a link to an absolute path ({target!r})")
    if not _inside(os.path.join(root, os.path.dirname(rel), target), root):
        raise _Refused(f"it is a link to {target!r}, outside the data dir")


def _check_destination(target: Path, root: str) -> None:
    if not _inside(str(target.parent), root) or (target.is_symlink() and not _inside(str(target), root)):
        raise _Refused(f"it would be written at {target}, which resolves outside the data dir (through a symlink)")


def _refusal(name: str, member: str, why: str, path: Path) -> DataError:
    return DataError(f"archive {name}: refused member {member!r}: {why}; nothing of it was written outside the data "
                     "dir", path)


def _unpack_zip(path: Path, dest: Path, name: str, limit: int) -> dict:
    root = os.path.realpath(dest)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"archive {name}: not a readable zip ({exc})", path) from None
    with zf:
        infos = zf.infolist()
        declared = sum(i.file_size for i in infos)
        if declared > limit:
            raise DataError(f"archive {name}: it declares {declared} bytes unpacked, over the limit of {limit} "
                            "(PREFBENCH_MAX_UNPACK_BYTES); nothing unpacked", path)
        todo = []
        for info in infos:  # all members are checked before anything is written
            try:
                rel = _member_path(info.filename)
                if rel is None:
                    continue
                mode = info.external_attr >> 16
                kind = stat.S_IFMT(mode)
                if stat.S_ISLNK(mode):
                    if info.file_size > 4096:
                        raise _Refused("it is a link with an overlong target")
                    target = zf.read(info).decode("utf-8", "replace")
                    _link_target_inside(rel, target, root)
                    todo.append(("link", rel, info, target))
                elif info.is_dir() or stat.S_ISDIR(mode):
                    todo.append(("dir", rel, info, None))
                elif kind and not stat.S_ISREG(mode):
                    raise _Refused("it is a device, FIFO or socket")
                else:
                    todo.append(("file", rel, info, None))
            except _Refused as why:
                raise _refusal(name, info.filename, str(why), path) from None
        written = 0
        # links last, so no member is written through a link of this archive; then every link is
        # checked again as it resolves once all exist (a chain such as d -> . and e -> d/.. passes
        # each check alone and leads out)
        order = {"dir": 0, "file": 1, "link": 2}
        todo.sort(key=lambda entry: order[entry[0]])
        links: list[tuple[Path, zipfile.ZipInfo]] = []
        for kind, rel, info, target in todo:
            out = dest / rel
            try:
                _check_destination(out, root)
                if kind == "dir":
                    out.mkdir(parents=True, exist_ok=True)
                    _check_destination(out / "x", root)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                _check_destination(out, root)
                if out.is_dir() and not out.is_symlink():
                    raise _Refused(f"{out} is a folder")
                if kind == "link":
                    if out.exists() and not out.is_symlink():
                        raise _Refused(f"it would replace {out}, already there, with a link")
                    if out.is_symlink():
                        out.unlink()
                    os.symlink(target, out)
                    links.append((out, info))
                    continue
                tmp = out.with_name(f".{out.name}.prefbench-unpack")
                n = 0
                with zf.open(info) as src, open(tmp, "wb") as dst:
                    while chunk := src.read(CHUNK):
                        n += len(chunk)
                        written += len(chunk)
                        if n > info.file_size or written > limit:
                            dst.close()
                            tmp.unlink()
                            raise _Refused(f"it unpacks to more than it declares or past the limit of {limit} bytes "
                                           "(PREFBENCH_MAX_UNPACK_BYTES)")
                        dst.write(chunk)
                os.replace(tmp, out)
            except _Refused as why:
                _remove_links(links)
                raise _refusal(name, info.filename, str(why), path) from None
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
                raise DataError(f"archive {name}: member {info.filename!r} cannot be read ({exc})", path) from None
        _check_final_links(links, root, name, path)
    return {"members": len(todo), "bytes": written}


def _remove_links(links: list) -> None:
    for made, _ in links:
        if made.is_symlink():
            made.unlink()


def _check_final_links(links: list, root: str, name: str, path: Path) -> None:
    """Every link the zip wrote, resolved in the final state (all links present); if one leads
    outside the data dir (or loops), all of them are removed and the archive is refused."""
    for out, info in links:
        try:
            real = os.path.realpath(out, strict=False)
        except (OSError, RuntimeError):
            real = None
        if real is None or not _inside(str(out), root) or os.path.islink(real):
            _remove_links(links)
            why = ("it is a link that leads outside the data dir once the archive's other links exist "
                   f"(it resolves to {real})" if real else "it is a link in a loop")
            raise _refusal(name, info.filename, why + "; the archive's links were removed", path)


class _Chain(io.RawIOBase):
    """The files read one after another: a tar split in parts."""

    def __init__(self, paths: list[Path]):
        self._paths, self._i, self._fh = list(paths), 0, None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self._fh is None:
                if self._i >= len(self._paths):
                    return 0
                self._fh = open(self._paths[self._i], "rb")
                self._i += 1
            n = self._fh.readinto(buffer)
            if n:
                return n
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        super().close()


class _EndRecordingInfo(tarfile.TarInfo):
    """Records why tarfile stopped reading headers: only the end-of-archive zero block
    (``EOFHeaderError``) is a whole archive; tarfile stops silently on a header that is garbage
    (a part missing or doubled) or on data that just ends (a part missing at the end)."""

    @classmethod
    def fromtarfile(cls, tarfile_):
        try:
            return super().fromtarfile(tarfile_)
        except tarfile.HeaderError as exc:
            tarfile_._prefbench_stop = exc
            raise


def _check_tar_end(tf, name: str, path: Path) -> None:
    stop = getattr(tf, "_prefbench_stop", None)
    if not isinstance(stop, tarfile.EOFHeaderError):
        why = ("the data ends without the end-of-archive blocks" if isinstance(stop, (tarfile.EmptyHeaderError,
               tarfile.TruncatedHeaderError)) else f"a member header is not valid ({stop})")
        raise DataError(f"archive {name}: {why} at byte {tf.offset}: a part is missing, doubled or damaged; the "
                        "members before it were unpacked, the archive is not marked unpacked", path)
    while chunk := tf.fileobj.read(CHUNK):
        if chunk.strip(b"\0"):
            raise DataError(f"archive {name}: data follows the end of the archive (after byte {tf.offset}): a part is "
                            "doubled or out of order; the archive is not marked unpacked", path)


def _unpack_tar(parts: list[Path], dest: Path, name: str, limit: int) -> dict:
    root = os.path.realpath(dest)
    has_filter = hasattr(tarfile, "data_filter")
    members = written = 0
    with io.BufferedReader(_Chain(parts), CHUNK) as raw, \
            tarfile.open(fileobj=raw, mode="r|*", tarinfo=_EndRecordingInfo) as tf:
        for member in tf:  # streamed: each member is checked just before it is written
            try:
                rel = _member_path(member.name)
                if rel is None:
                    continue
                if member.issym():
                    _link_target_inside(rel, member.linkname, root)
                elif member.islnk():
                    target = _member_path(member.linkname)
                    if target is None or not _inside(os.path.join(root, target), root):
                        raise _Refused(f"it is a hard link to {member.linkname!r}, outside the data dir")
                elif member.ischr() or member.isblk() or member.isfifo():
                    raise _Refused("it is a device or FIFO")
                elif not (member.isfile() or member.isdir()):
                    raise _Refused("it is neither a file, a folder nor a link")
                if member.isfile():
                    written += member.size
                    if written > limit:
                        raise _Refused(f"the archive unpacks to more than the limit of {limit} bytes "
                                       "(PREFBENCH_MAX_UNPACK_BYTES)")
                _check_destination(dest / rel, root)
                if member.issym() or member.islnk() or member.isfile():
                    out = dest / rel
                    if out.is_symlink():  # never write through a link an earlier member made
                        out.unlink()
                if has_filter:
                    tf.extract(member, dest, filter="data")
                else:  # Python without extraction filters: the checks above, and no owners or modes from the archive
                    tf.extract(member, dest, set_attrs=False)
                members += 1
            except _Refused as why:
                raise _refusal(name, member.name, str(why), parts[0]) from None
            except _FILTER_ERROR as exc:
                raise _refusal(name, member.name, str(exc), parts[0]) from None
        _check_tar_end(tf, name, parts[0])
    return {"members": members, "bytes": written}
