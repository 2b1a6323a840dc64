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
from tests.fixtures.extras import skip_without_extra


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


# -- a tar split in parts ------------------------------------------------------------------------
def _split_tar(folder: Path, stem: str, n_parts: int, members: int = 30, mode: str = "w") -> list[Path]:
    """A real tar (``mode`` "w" or "w:gz") of ``members`` files of distinct random bytes, cut into
    ``n_parts`` files ``<stem>.00``, ``.01``, ... of nearly equal size."""
    import io
    import random
    import tarfile

    rng = random.Random(7)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for k in range(members):
            data = rng.randbytes(3000 + 97 * k)
            info = tarfile.TarInfo(f"images/{k:02d}.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    blob = buf.getvalue()
    cut = [len(blob) * i // n_parts for i in range(n_parts + 1)]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n_parts):
        path = folder / f"{stem}.{i:02d}"
        path.write_bytes(blob[cut[i]:cut[i + 1]])
        out.append(path)
    return out


@pytest.mark.parametrize("mode, stem", [("w", "hpdv3.tar"), ("w:gz", "hpdv3.tar.gz")])
def test_split_tar_whole_unpacks(tmp_path, mode, stem):
    parts = _split_tar(tmp_path / "dl", stem, 4, mode=mode)
    result = unpack(tmp_path / "data", parts, name=stem, sizes=[p.stat().st_size for p in parts])
    assert result["members"] == 30 and len(list((tmp_path / "data" / "images").iterdir())) == 30


@pytest.mark.parametrize("mode, stem", [("w", "hpdv3.tar"), ("w:gz", "hpdv3.tar.gz")])
def test_split_tar_with_a_gap_or_a_duplicate_unpacks_nothing_and_leaves_no_marker(tmp_path, mode, stem):
    from prefbench.data.download import STATE_DIR, unpack_recorded

    data = tmp_path / "data"
    parts = _split_tar(data, stem, 4, mode=mode)
    duplicate = data / f"{stem}.1"
    duplicate.write_bytes(parts[1].read_bytes())

    def records(paths):
        return [{"path": p.name, "size": p.stat().st_size, "sha256": "x"} for p in paths]

    cases = {
        "gap": ([parts[0], parts[1], parts[3]], r"not consecutive \(missing part index 2 "),
        "duplicate": ([parts[0], parts[1], duplicate, parts[2], parts[3]], rf"parts {stem}\.01 and {stem}\.1 are the same"),
        "out of order": ([parts[0], parts[2], parts[1], parts[3]], "out of order"),
    }
    for what, (given, message) in cases.items():
        with pytest.raises(DataError, match=message):
            unpack_recorded(data, stem, records(given), log=lambda m: None)
        assert not (data / "images").exists(), what
        assert not (data / STATE_DIR / "unpacked").exists() or not list((data / STATE_DIR / "unpacked").iterdir())
    # a part whose size differs from the manifest's record
    bad = records(parts)
    bad[2]["size"] += 1
    with pytest.raises(DataError, match=rf"part {stem}\.02 has \d+ bytes, the manifest records \d+; nothing unpacked"):
        unpack_recorded(data, stem, bad, log=lambda m: None)
    assert not (data / "images").exists()
    assert unpack_recorded(data, stem, records(parts), log=lambda m: None)["members"] == 30


def test_split_tar_with_swapped_contents_or_a_missing_tail_is_refused(tmp_path):
    """Parts named in order whose bytes are not (a part's bytes doubled, or the last part absent):
    tarfile alone stops silently at the garbage header or at the end of the data."""
    parts = _split_tar(tmp_path / "dl", "x.tar", 3)
    parts[1].write_bytes(parts[2].read_bytes())  # .01 holds .02's bytes: a doubled part
    with pytest.raises(DataError, match=r"archive x\.tar: (a member header is not valid|data follows|.*not a readable)"):
        unpack(tmp_path / "a", parts, name="x.tar")
    parts = _split_tar(tmp_path / "dl2", "x.tar", 3)
    with pytest.raises(DataError, match="x.tar: (the data ends without the end-of-archive blocks|.*unexpected end)"):
        unpack(tmp_path / "b", parts[:2], name="x.tar")


def test_a_tar_cut_at_a_member_boundary_is_refused(tmp_path):
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for k in range(3):
            info = tarfile.TarInfo(f"f{k}")
            info.size = 512
            tf.addfile(info, io.BytesIO(b"a" * 512))
    (tmp_path / "y.tar").write_bytes(buf.getvalue()[:2048])  # two whole members, no end blocks
    with pytest.raises(DataError, match="ends without the end-of-archive blocks at byte 2048"):
        unpack(tmp_path / "c", [tmp_path / "y.tar"], name="y.tar")
    (tmp_path / "z.tar").write_bytes(buf.getvalue() + b"\0" * 1024 + b"junk" + b"\0" * 508)
    with pytest.raises(DataError, match="data follows the end of the archive"):
        unpack(tmp_path / "d", [tmp_path / "z.tar"], name="z.tar")


def test_a_hub_file_name_with_dot_dot_is_refused_before_fetching(tmp_path):
    """A repository listing a file ``images.tar.gz./../../evil`` (the manifest's ``images.tar.gz.*``
    matches it): exit 2 naming it, nothing fetched, nothing outside the box."""
    import dataclasses
    import json
    import os

    skip_without_extra("hub")
    from prefbench.testing.hub_server import HubServer
    from tests.core.test_download import download
    from tests.fixtures.benchmarks import write_hpdv3

    src, repo = tmp_path / "src", tmp_path / "repo"
    write_hpdv3(src, n=2)
    repo.mkdir()
    (repo / "test.json").write_bytes((src / "test.json").read_bytes())
    (repo / "images.tar.gz.00").write_bytes(b"x" * 10)
    site = tmp_path / "site"
    (site / "dd_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "dd_plugin-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: dd-plugin\nVersion: 0.1\n")
    (site / "dd_plugin-0.1.dist-info" / "entry_points.txt").write_text("[prefbench.datasets]\nhpdv3_dd = dd_plugin:SPEC\n")
    (site / "dd_plugin.py").write_text(
        "from dataclasses import replace\n"
        "from prefbench.data import DATASETS, Download\n"
        "SPEC = replace(DATASETS['hpdv3'], name='hpdv3_dd', download=Download(\n"
        "    'MizzenAI/HPDv3', {'*': ('{split}.json', 'images.tar.gz.*')}, archives=('images.tar.gz.*',)))\n")
    hub = HubServer({"MizzenAI/HPDv3": repo}, max_seconds=120).start()
    try:
        served = hub.repos["MizzenAI/HPDv3"]
        good = served.files["images.tar.gz.00"]
        evil = "images.tar.gz./../../evil.json"
        served.files[evil] = dataclasses.replace(good, path=evil)
        data = tmp_path / "box" / "data"
        proc = download(["hpdv3_dd", "--data-dir", data, "--json"], tmp_path, hub.url,
                        PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
        assert proc.returncode == 2, (proc.returncode, proc.stderr[-800:])
        assert f"lists a file named {json.dumps(evil)}".replace('"', "'") in proc.stderr
        assert "Traceback" not in proc.stderr and hub.file_gets() == 0
        assert not (tmp_path / "evil.json").exists() and not (tmp_path / "box" / "evil.json").exists()
    finally:
        hub.stop()
