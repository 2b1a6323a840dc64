"""Safe image decoding: every failure becomes an :class:`ImageError` with a reason.

Oversized images are refused from their header, before any pixel is decoded, so a
decompression bomb costs nothing.
"""

from __future__ import annotations

import os
import warnings
from typing import BinaryIO

from prefbench.errors import ImageError

#: Largest image (width x height) that is decoded. 8192 x 8192 by default; the
#: ``PREFBENCH_MAX_IMAGE_PIXELS`` environment variable overrides it.
DEFAULT_MAX_PIXELS = 8192 * 8192


def max_pixels() -> int:
    value = os.environ.get("PREFBENCH_MAX_IMAGE_PIXELS")
    return int(value) if value else DEFAULT_MAX_PIXELS


def decode_image(fp: BinaryIO, name: str = "<image>", limit: int | None = None):
    """Decode ``fp`` to an RGB ``PIL.Image``.

    Raises ImageError for empty, truncated, undecodable or oversized input.
    """
    from PIL import Image, UnidentifiedImageError

    limit = max_pixels() if limit is None else limit
    start = fp.tell()
    fp.seek(0, os.SEEK_END)
    size = fp.tell() - start
    fp.seek(start)
    if size == 0:
        raise ImageError(f"{name}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
            width, height = img.size
            if width * height > limit:
                raise ImageError(
                    f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of {limit} "
                    "(possible decompression bomb; raise PREFBENCH_MAX_IMAGE_PIXELS to allow it)"
                )
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
