"""Safe image decoding: every failure becomes an :class:`ImageError` with a reason.

Oversized images are refused from their header, before any pixel is decoded, so a
decompression bomb costs nothing.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

from prefbench.errors import ImageError

#: Largest image (width x height) that is decoded. 8192 x 8192 by default; the
#: ``PREFBENCH_MAX_IMAGE_PIXELS`` environment variable overrides it.
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Largest image file that is read: 256 MiB (an uncompressed 8192 x 8192 RGBA image is 256 MiB);
#: ``PREFBENCH_MAX_IMAGE_BYTES`` overrides it.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


#: Most scans a JPEG may have: a progressive JPEG has about 10, and each scan costs a pass over the
#: whole image, so 2,000 repeated scans in a 57 KB file decode for ~10 s (2048x2048).
#: ``PREFBENCH_MAX_JPEG_SCANS`` overrides it.
DEFAULT_MAX_JPEG_SCANS = 64
#: Most scans x pixels of one JPEG (its decoding time): 16 scans of 8192x8192, 64 of 4096x4096;
#: 64 scans of 4096x4096 decoded in 0.7 s on a 2-core CI machine. ``PREFBENCH_MAX_JPEG_SCAN_PIXELS`` overrides it.
DEFAULT_MAX_JPEG_SCAN_PIXELS = 64 * 4096 * 4096


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def max_pixels() -> int:
    value = os.environ.get("PREFBENCH_MAX_IMAGE_PIXELS")
    return int(value) if value else DEFAULT_MAX_PIXELS


def max_bytes() -> int:
    value = os.environ.get("PREFBENCH_MAX_IMAGE_BYTES")
    return int(value) if value else DEFAULT_MAX_BYTES


def resolve_inside(path: Path, root: Path | None) -> str:
    """The real path of ``path``, checked to lie inside ``root`` (when given).

    Raises ImageError for a missing file, a symlink loop, or a path that resolves (through
    ``..``, an absolute path or a symlink) outside ``root``.
    """
    if "\0" in os.fspath(path):
        raise ImageError(f"{os.fspath(path)!a}: a path with a NUL byte; not read")
    try:
        real = os.path.realpath(path, strict=True)
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except (OSError, RuntimeError) as exc:
        if getattr(exc, "errno", None) == errno.ELOOP or isinstance(exc, RuntimeError):
            raise ImageError(f"{path}: symlink loop") from None
        raise ImageError(f"{path}: cannot resolve ({getattr(exc, 'strerror', None) or exc})") from None
    if root is not None and not is_inside(real, root):
        raise ImageError(
            f"{path}: resolves to {real}, outside the data dir {root}; not read "
            "(pass --allow-outside-data-dir to read images outside it)"
        )
    return real


def is_inside(real: str, root: Path | str) -> bool:
    """Whether the resolved path ``real`` lies inside ``root`` (resolved here)."""
    from prefbench.provenance import relative_inside

    return relative_inside(real, os.path.realpath(root)) is not None


def open_image_file(path: Path, root: Path | None = None):
    """Open an image file for reading, safely: the path must resolve inside ``root`` (when
    given), be a regular file (never a FIFO or a device, which would hang or never end) and be
    at most :func:`max_bytes` long. Returns a binary file object; raises ImageError."""
    real = resolve_inside(path, root)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if root is not None:
        flags |= getattr(os, "O_NOFOLLOW", 0)  # the real path has no symlink left: one now is a swap
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise ImageError(f"{path}: cannot open ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(f"{path}: not a regular file (a FIFO, device or folder); not read")
        limit = max_bytes()
        if st.st_size > limit:
            raise ImageError(f"{path}: {st.st_size} bytes exceeds the limit of {limit} "
                             "(raise PREFBENCH_MAX_IMAGE_BYTES to allow it)")
        if st.st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def open_checked(fp: BinaryIO, name: str = "<image>", limit: int | None = None):
    """``PIL.Image.open(fp)`` with only the header read, once its size is known to be within
    ``limit`` pixels (default :func:`max_pixels`): an :class:`ImageError` for more, or for what
    PIL calls a decompression bomb. Other PIL errors (not an image) propagate as they are."""
    from PIL import Image

    limit = max_pixels() if limit is None else limit
    start = fp.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: refused as a decompression bomb ({exc})") from None
    width, height = img.size
    if width * height > limit:
        img.close()
        raise ImageError(f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of {limit} "
                         "(possible decompression bomb; raise PREFBENCH_MAX_IMAGE_PIXELS to allow it)")
    if img.format in ("JPEG", "MPO"):
        try:
            _check_jpeg_scans(fp, start, width * height, name)
        except ImageError:
            img.close()
            raise
    return img


def count_jpeg_scans(fp: BinaryIO, start: int = 0) -> int:
    """How many scans (start-of-scan segments, ``FF DA``) the JPEG from ``start`` holds, read as a
    decoder reads them: marker segments are skipped by their length fields (so an EXIF or other
    APPn payload holding ``FF DA`` bytes counts nothing), and inside a scan's entropy-coded data a
    stuffed ``FF 00``, an ``FF D0``-``FF D7`` restart marker or ``FF`` fill bytes do not end it.
    Bytes where a marker should be are skipped to the next ``FF``, as libjpeg does; an MPO's
    further frames are counted too. The file position is restored."""
    pos = fp.tell()
    try:
        data, close = _jpeg_bytes(fp)
        try:
            return _count_scans(data, start)
        finally:
            close()
    finally:
        fp.seek(pos)


def _jpeg_bytes(fp: BinaryIO):
    """The whole of ``fp`` as something with ``find`` and ``[i]`` (a mapped file where it can be:
    no copy), and how to let it go."""
    import mmap

    try:
        mapped = mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        fp.seek(0)
        return fp.read(), lambda: None
    return mapped, mapped.close


#: markers that stand alone (no length field): TEM, RST0-7, SOI, EOI
_STANDALONE = frozenset([0x01, *range(0xD0, 0xDA)])


def _count_scans(data, i: int) -> int:
    n, count = len(data), 0
    while True:
        i = data.find(b"\xff", i)  # the next marker (bytes before it are skipped, as libjpeg does)
        if i < 0 or i + 1 >= n:
            return count
        marker = data[i + 1]
        if marker == 0xFF:  # a fill byte before a marker
            i += 1
            continue
        if marker == 0x00 or marker in _STANDALONE:
            i += 2
            continue
        if i + 3 >= n:
            return count
        length = (data[i + 2] << 8) | data[i + 3]
        i += 2 + max(length, 2)  # the segment's payload (an APPn's EXIF included), by its length field
        if marker != 0xDA:
            continue
        count += 1
        while True:  # entropy-coded data: until an FF followed by a byte that is not 00, RSTn or FF
            i = data.find(b"\xff", i)
            if i < 0 or i + 1 >= n:
                return count
            following = data[i + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                i += 2
            elif following == 0xFF:
                i += 1
            else:
                break


def _check_jpeg_scans(fp: BinaryIO, start: int, pixels: int, name: str) -> None:
    """The decoding budget of a JPEG: at most PREFBENCH_MAX_JPEG_SCANS scans and scans x pixels
    at most PREFBENCH_MAX_JPEG_SCAN_PIXELS (each scan of a progressive JPEG is a pass over the
    image: thousands of them in a small file decode for minutes)."""
    scans = count_jpeg_scans(fp, start)
    max_scans = _env_int("PREFBENCH_MAX_JPEG_SCANS", DEFAULT_MAX_JPEG_SCANS)
    budget = _env_int("PREFBENCH_MAX_JPEG_SCAN_PIXELS", DEFAULT_MAX_JPEG_SCAN_PIXELS)
    if scans > max_scans:
        raise ImageError(f"{name}: a JPEG of {scans} scans exceeds the limit of {max_scans} (a decoding-time bomb; "
                         "raise PREFBENCH_MAX_JPEG_SCANS to allow it)")
    if scans * pixels > budget:
        raise ImageError(f"{name}: a JPEG of {scans} scans x {pixels} pixels exceeds the decoding budget of {budget} "
                         "scan-pixels (raise PREFBENCH_MAX_JPEG_SCAN_PIXELS to allow it)")


def decode_image(fp: BinaryIO, name: str = "<image>", limit: int | None = None):
    """Decode ``fp`` to an RGB ``PIL.Image``.

    Raises ImageError for empty, truncated, undecodable or oversized input.
    """
    from PIL import Image, UnidentifiedImageError

    start = fp.tell()
    fp.seek(0, os.SEEK_END)
    size = fp.tell() - start
    fp.seek(start)
    if size == 0:
        raise ImageError(f"{name}: empty file (0 bytes)")
    try:
        img = open_checked(fp, name, limit)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            return img.convert("RGB")
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name}: refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not a decodable image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL reports truncated data as OSError("image file is truncated ...")
        raise ImageError(f"{name}: cannot decode ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - any plugin bug on hostile bytes (a DDS format Pillow
        # lacks: NotImplementedError; a fuzzed SPIDER header: AttributeError) fails this image only
        raise ImageError(f"{name}: cannot decode ({type(exc).__name__}: {exc})") from None
