"""Issue 31 items 2 and 5: real archives built here. Zip links are checked as they resolve once the
archive's links all exist (a chain of links that each stay inside leads out), and a tar split in
parts is verified whole against its manifest before anything is unpacked."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from prefbench.data.archives import unpack
from prefbench.errors import DataError


def _zip(path: Path, members: list[tuple[str, str | bytes]]) -> Path:
    """``(name, bytes)`` are files, ``(name, "-> target")`` symlinks (unix mode in external_attr)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members:
            if isinstance(content, str) and content.startswith("-> "):
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, content[3:])
            else:
                zf.writestr(name, content)
    return path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("members", [
    # each link alone resolves inside DIR; together e is DIR/.. and f reads outside
    [("d", "-> ."), ("e", "-> d/.."), ("human_rating.json", "-> e/secret.txt")],
    # p/q/../.. is DIR while p and q do not exist; once p -> . and q -> . exist it is DIR/../..
    [("a", "-> p/q/../.."), ("p", "-> ."), ("q", "-> ."), ("b", "-> a/outside/secret.txt")],
    # written through: a file member under a link member of the same archive
    [("d", "-> ."), ("e", "-> d/.."), ("e/planted.txt", b"x")],
])
def test_zip_link_chains_out_of_the_data_dir_are_refused(tmp_path, members):
    outside = tmp_path / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "secret.txt").write_text("secret")
    (tmp_path / "secret.txt").write_text("secret")
    before = _tree(tmp_path)
    archive = _zip(tmp_path / "a.zip", members)
    dest = outside / "data"
    with pytest.raises(DataError, match=r"archive a\.zip: refused member '\w[^']*': .*(outside|through a symlink|would replace)"):
        unpack(dest, [archive], name="a.zip")
    assert not [p for p in dest.rglob("*") if p.is_symlink()]  # no link of it is left
    assert _tree(tmp_path) - before - {"a.zip"} <= {f"outside/data/{p}" for p in _tree(dest)}
    assert not (outside / "planted.txt").exists() and not (tmp_path / "planted.txt").exists()


def test_zip_link_cannot_replace_a_file_and_links_inside_still_unpack(tmp_path):
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "human_rating.json").write_text("{}")
    with pytest.raises(DataError, match="would replace .*, already there, with a link"):
        unpack(dest, [_zip(tmp_path / "a.zip", [("human_rating.json", "-> other.json")])], name="a.zip")
    assert (dest / "human_rating.json").read_text() == "{}" and not (dest / "human_rating.json").is_symlink()
    good = _zip(tmp_path / "b.zip", [("imgs/x.png", b"png"), ("more/y.png", "-> ../imgs/x.png"), ("cur", "-> .")])
    assert unpack(dest, [good], name="b.zip")["members"] == 3
    assert (dest / "more" / "y.png").read_bytes() == b"png" and os.path.islink(dest / "cur")
