"""Every way an image can be bad becomes an ImageError with a reason, never a crash."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from prefbench.data.model import ImageRef
from prefbench.errors import ImageError


def _jpeg(size=(64, 64)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="JPEG")
    return buf.getvalue()


def test_good_image_decodes_to_rgb(tmp_path):
    p = tmp_path / "ok.png"
    Image.new("L", (5, 3), 7).save(p)
    img = ImageRef("ok.png", path=p).open()
    assert img.mode == "RGB" and img.size == (5, 3)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.jpg", b"", "empty file"),
        ("text.jpg", b"this is not an image at all", "not a decodable image"),
        ("truncated.jpg", _jpeg()[:300], "cannot decode"),
    ],
)
def test_bad_files(tmp_path, name, content, reason):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ImageError, match=reason):
        ImageRef(name, path=p).open()


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="file not found"):
        ImageRef("nope.png", path=tmp_path / "nope.png").open()


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    # a 4000x4000 PNG is small on disk; with a 1-megapixel limit it must be refused from its header
    p = tmp_path / "bomb.png"
    Image.new("1", (4000, 4000)).save(p)
    assert p.stat().st_size < 10_000
    monkeypatch.setenv("PREFBENCH_MAX_IMAGE_PIXELS", str(1_000_000))
    with pytest.raises(ImageError, match="decompression bomb"):
        ImageRef("bomb.png", path=p).open()
