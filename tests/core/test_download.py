"""`prefbench download` against a hub-shaped server on 127.0.0.1 (prefbench.testing.hub_server),
never the internet: files fetched at a resolved commit and checked against the repository's sizes
and hashes, archives unpacked inside the data dir only, a rerun that fetches nothing, a dropped
transfer resumed, offline and bad requests answered with exit 2 and what to put where."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.benchmarks import write_genai_rank, write_hpdv3
from tests.fixtures.cli import REPO, run_cli
from tests.fixtures.extras import requires_extra

needs_hub = requires_extra("hub")
GR_REPO = "zhiqiulin/GenAI-Image-Ranking-800"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hub_env(tmp_path: Path, url: str | None = None, **extra) -> dict:
    env = {"HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_DISABLE_TELEMETRY": "1", "HF_TOKEN": "",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if url:
        env["HF_ENDPOINT"] = url
    env.update(extra)
    return env


def download(args, tmp_path, url=None, **env):
    return run_cli(["download", *map(str, args)], cwd=tmp_path, env_extra=hub_env(tmp_path, url, **env), timeout=180)


def nothing_outside(box: Path, data_dir: Path) -> None:
    """``box`` holds only ``data_dir`` (the test's sandbox around it)."""
    assert sorted(p.name for p in box.iterdir()) == [data_dir.name]


@pytest.fixture
def gr_repo(tmp_path) -> Path:
    """GenAI-Bench-Rank as its repository lays it out: human_rating.json and one zip of images per generator."""
    src, repo = tmp_path / "gr_src", tmp_path / "gr_repo"
    write_genai_rank(src, n_prompts=4)
    repo.mkdir()
    (repo / "human_rating.json").write_bytes((src / "human_rating.json").read_bytes())
    with zipfile.ZipFile(repo / "DALLE_3.zip", "w") as zf:
        for f in sorted((src / "DALLE_3").iterdir()):
            zf.write(f, f"DALLE_3/{f.name}")
    (repo / "SDXL_Base.zip").write_bytes(b"not fetched for DALLE_3")
    (repo / "README.md").write_text("a dataset card")
    return repo


@pytest.fixture
def hub_factory():
    from prefbench.testing.hub_server import HubServer

    servers = []

    def start(repos, **kw):
        server = HubServer(repos, max_seconds=300, **kw).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- a download, a run on it, the manifest, a rerun

@needs_hub
def test_download_unpacks_checks_and_the_split_runs(tmp_path, gr_repo, hub_factory):
    hub = hub_factory({GR_REPO: gr_repo}, page_size=2)  # the tree listing comes in pages
    data = tmp_path / "box" / "data"
    proc = download(["genai_rank", "--data-dir", data, "--json"], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    repo = hub.repos[GR_REPO]
    assert (m["dataset"], m["split"], m["repo_id"], m["repo_type"]) == ("genai_rank", "DALLE_3", GR_REPO, "dataset")
    assert m["revision"] == repo.sha and m["requested_revision"] == "main"
    assert m["patterns"] == ["human_rating.json", "DALLE_3.zip"]
    files = {f["path"]: f for f in m["files"]}
    assert set(files) == {"human_rating.json", "DALLE_3.zip"}  # not SDXL_Base.zip, not README.md
    for path, f in files.items():
        assert f["size"] == (gr_repo / path).stat().st_size == (data / path).stat().st_size
        assert f["sha256"] == sha256(gr_repo / path) == sha256(data / path)
        assert f["fetched"] is True
    assert files["DALLE_3.zip"]["lfs"] and files["DALLE_3.zip"]["checked"] == "sha256"
    assert not files["human_rating.json"]["lfs"] and files["human_rating.json"]["checked"] == "git-sha1"
    image_bytes = sum(f.stat().st_size for f in (tmp_path / "gr_src" / "DALLE_3").iterdir())
    assert m["archives"] == [{"archive": "DALLE_3.zip", "parts": ["DALLE_3.zip"], "members": 36,
                              "bytes": image_bytes, "unpacked": "now"}]
    assert m["load"] == {"ok": True, "items": 4, "images": 36, "images_present": 36}
    assert m["prefbench_version"] and m["time"] and m["endpoint"] == hub.url
    assert json.loads((data / "prefbench_download.json").read_text()) == m
    assert (data / "DALLE_3" / "00003_09.jpeg").read_bytes() == (tmp_path / "gr_src/DALLE_3/00003_09.jpeg").read_bytes()
    assert not (data / "SDXL_Base.zip").exists()
    nothing_outside(tmp_path / "box", data)
    assert hub.file_gets() == 2 and hub.unhandled == []

    run = run_cli(["run", "--scorer", "random", "--dataset", "genai_rank", "--split", "DALLE_3", "--data-dir", data,
                   "--out", tmp_path / "run", "--no-progress", "--bootstrap-resamples", "100"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["counts"]["ok"] == 36 and rec["counts"]["error"] == 0

    # the rerun fetches nothing and unpacks nothing; the text output says so
    before = len(hub.requests)
    again = download(["genai_rank", "--data-dir", data], tmp_path, hub.url)
    assert again.returncode == 0, again.stderr
    assert hub.file_gets() == 2  # no file body fetched again
    assert [r["kind"] for r in hub.requests[before:]] == ["info"]  # one look at the commit, nothing else
    assert "0 fetched now" in again.stdout and "unpacked (earlier)" in again.stdout and "loads: 4 items" in again.stdout
    m2 = json.loads((data / "prefbench_download.json").read_text())
    assert [f["fetched"] for f in m2["files"]] == [False, False] and m2["archives"][0]["unpacked"] == "earlier"
    assert [f["sha256"] for f in m2["files"]] == [f["sha256"] for f in m["files"]]


@needs_hub
def test_a_dropped_transfer_resumes_with_a_range_request(tmp_path, gr_repo, hub_factory):
    # huggingface_hub keeps what it received in whole chunks (10 MiB in 2.x) and asks for the rest
    with zipfile.ZipFile(gr_repo / "DALLE_3.zip", "a") as zf:
        zf.writestr("DALLE_3/padding.bin", os.urandom(24 * 1024 * 1024))
    size = (gr_repo / "DALLE_3.zip").stat().st_size
    cut = size - 1000
    hub = hub_factory({GR_REPO: gr_repo}, truncate_once={"DALLE_3.zip": cut})
    data = tmp_path / "data"
    proc = download(["genai_rank", "--data-dir", data, "--json"], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    gets = [r for r in hub.requests if r["path"] == "DALLE_3.zip" and r["method"] == "GET"]
    assert len(gets) == 2 and (gets[0]["status"], gets[0]["range"]) == (200, None)
    assert gets[1]["status"] == 206 and gets[1]["range"].startswith("bytes=")
    resumed_at = int(gets[1]["range"][len("bytes="):].rstrip("-"))
    assert 0 < resumed_at <= cut
    assert sha256(data / "DALLE_3.zip") == sha256(gr_repo / "DALLE_3.zip")
    assert json.loads(proc.stdout)["load"]["images_present"] == 36


@needs_hub
def test_a_file_that_does_not_match_the_repository_record_is_removed(tmp_path, gr_repo, hub_factory):
    hub = hub_factory({GR_REPO: gr_repo})
    # the server keeps announcing its record (sizes, sha256, git blob ids) while it serves other bytes of
    # the same size: huggingface_hub's own size check passes, prefbench's hash check must not
    good = (gr_repo / "DALLE_3.zip").read_bytes()
    bad = bytearray(good)
    bad[100] ^= 0xFF
    (gr_repo / "DALLE_3.zip").write_bytes(bytes(bad))
    data = tmp_path / "data"
    proc = download(["genai_rank", "--data-dir", data], tmp_path, hub.url)
    assert proc.returncode == 2
    assert f"{data / 'DALLE_3.zip'}: has sha256 {hashlib.sha256(bad).hexdigest()}" in proc.stderr, proc.stderr
    assert "removed it: run the command again" in proc.stderr
    assert not (data / "DALLE_3.zip").exists() and not (data / "DALLE_3").exists()
    assert not (data / "prefbench_download.json").exists()
    (gr_repo / "DALLE_3.zip").write_bytes(good)  # the transfer is right this time
    proc = download(["genai_rank", "--data-dir", data], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    assert sha256(data / "DALLE_3.zip") == sha256(gr_repo / "DALLE_3.zip") and (data / "DALLE_3").is_dir()
    assert hub.file_gets("DALLE_3.zip") == 2 and hub.file_gets("human_rating.json") == 1

    # a file stored in git (not LFS) is checked against its git blob id
    text = (gr_repo / "human_rating.json").read_text()
    (gr_repo / "human_rating.json").write_text(text.replace("prompt 1", "prompt 7", 1))
    proc = download(["genai_rank", "--data-dir", tmp_path / "data2"], tmp_path, hub.url)
    assert proc.returncode == 2 and "human_rating.json: has git blob id" in proc.stderr, proc.stderr


@needs_hub
def test_hpdv3_gets_its_annotation_only(tmp_path, hub_factory):
    """The built-in manifest names test.json: the images come from archives it leaves to the user."""
    repo = tmp_path / "hpdv3_repo"
    write_hpdv3(repo, n=6)
    (repo / "all.json").write_text("[]")
    hub = hub_factory({"MizzenAI/HPDv3": repo})
    data = tmp_path / "data"
    proc = download(["hpdv3", "--data-dir", data, "--json"], tmp_path, hub.url)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert [f["path"] for f in m["files"]] == ["test.json"] and m["archives"] == []
    assert m["load"] == {"ok": True, "items": 6, "images": 12, "images_present": 0}
    assert sorted(p.name for p in data.iterdir()) == [".cache", "prefbench_download.json", "test.json"]


@needs_hub
def test_a_plugin_dataset_downloads_a_tar_in_parts_and_runs(tmp_path, hub_factory):
    """A plugin's manifest with HPDv3's image archive as published (``images.tar.gz.*`` parts)."""
    src, repo = tmp_path / "src", tmp_path / "repo"
    write_hpdv3(src, n=5)
    repo.mkdir()
    (repo / "test.json").write_bytes((src / "test.json").read_bytes())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src / "images", "images")
    blob = buf.getvalue()
    third = len(blob) // 3 + 1
    for k in range(3):
        (repo / f"images.tar.gz.{k:02d}").write_bytes(blob[k * third:(k + 1) * third])
    site = tmp_path / "site"
    (site / "hpdv3_parts_plugin-0.1.dist-info").mkdir(parents=True)
    (site / "hpdv3_parts_plugin-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: hpdv3-parts-plugin\nVersion: 0.1\n")
    (site / "hpdv3_parts_plugin-0.1.dist-info" / "entry_points.txt").write_text(
        "[prefbench.datasets]\nhpdv3_parts = hpdv3_parts_plugin:SPEC\n")
    (site / "hpdv3_parts_plugin.py").write_text(
        "from dataclasses import replace\n"
        "from prefbench.data import DATASETS, Download\n"
        "SPEC = replace(DATASETS['hpdv3'], name='hpdv3_parts', download=Download(\n"
        "    'MizzenAI/HPDv3', {'*': ('{split}.json', 'images.tar.gz.*')}, archives=('images.tar.gz.*',)))\n")
    hub = hub_factory({"MizzenAI/HPDv3": repo})
    data = tmp_path / "box" / "data"
    pythonpath = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    proc = download(["hpdv3_parts", "--data-dir", data, "--json"], tmp_path, hub.url, PYTHONPATH=pythonpath)
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)
    assert m["archives"][0]["archive"] == "images.tar.gz"
    assert m["archives"][0]["parts"] == ["images.tar.gz.00", "images.tar.gz.01", "images.tar.gz.02"]
    assert m["load"] == {"ok": True, "items": 5, "images": 10, "images_present": 10}
    nothing_outside(tmp_path / "box", data)
    run = run_cli(["run", "--scorer", "random", "--dataset", "hpdv3_parts", "--data-dir", data, "--out",
                   tmp_path / "run", "--no-progress", "--bootstrap-resamples", "100"], cwd=tmp_path,
                  env_extra={"PYTHONPATH": pythonpath})
    assert run.returncode == 0, run.stderr
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["counts"]["ok"] == 10 and rec["counts"]["error"] == 0


# -- archives: confined to the data dir

def _zip(path: Path, members: list[tuple[str, bytes]], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, target)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for m in members:
            if isinstance(m, tuple):
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
            else:
                tf.addfile(m)
    return path


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 5
    return info


EVIL = {
    "zip ../": lambda p, out: _zip(p / "a.zip", [("ok.txt", b"ok"), ("../evil.txt", b"x")]),
    "zip nested ../": lambda p, out: _zip(p / "a.zip", [("ok.txt", b"ok"), ("sub/../../evil.txt", b"x")]),
    "zip absolute": lambda p, out: _zip(p / "a.zip", [("ok.txt", b"ok"), (str(out / "evil.txt"), b"x")]),
    "zip symlink out": lambda p, out: _zip(p / "a.zip", [("ok.txt", b"ok")], {"link": "../../"}),
    "zip symlink absolute": lambda p, out: _zip(p / "a.zip", [("ok.txt", b"ok")], {"link": str(out)}),
    "tar ../": lambda p, out: _tar(p / "a.tar.gz", [("ok.txt", b"ok"), ("../evil.txt", b"x")]),
    "tar absolute": lambda p, out: _tar(p / "a.tar.gz", [("ok.txt", b"ok"), (str(out / "evil.txt"), b"x")]),
    "tar symlink out": lambda p, out: _tar(p / "a.tar.gz", [_link("link", "../.."), ("link/evil.txt", b"x")]),
    "tar symlink absolute": lambda p, out: _tar(p / "a.tar.gz", [_link("link", str(out)), ("link/evil.txt", b"x")]),
    "tar hardlink out": lambda p, out: _tar(p / "a.tar.gz", [_link("hard", "../../etc/passwd", tarfile.LNKTYPE)]),
    "tar device": lambda p, out: _tar(p / "a.tar.gz", [_device("null")]),
}


@pytest.mark.parametrize("case", list(EVIL))
def test_an_archive_reaching_outside_is_refused(tmp_path, case):
    from prefbench.data.archives import unpack
    from prefbench.errors import DataError

    box, outside = tmp_path / "box", tmp_path / "outside"
    data = box / "data"
    for d in (box, data, outside, tmp_path / "arch"):
        d.mkdir(exist_ok=True)
    archive = EVIL[case](tmp_path / "arch", outside)
    with pytest.raises(DataError) as err:
        unpack(data, [archive], name="a-archive")
    assert "archive a-archive: refused member" in str(err.value)
    nothing_outside(box, data)
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil.txt").exists()
    if case.startswith("zip"):  # a zip is checked whole before anything is written
        assert list(data.iterdir()) == []


def test_an_archive_is_unpacked_inside_with_links_that_stay_inside(tmp_path):
    from prefbench.data.archives import unpack

    data = tmp_path / "data"
    z = _zip(tmp_path / "a.zip", [("d/x.txt", b"zip"), ("./y.txt", b"y")], {"d/to_x": "x.txt"})
    assert unpack(data, [z]) == {"members": 3, "bytes": 4}
    assert (data / "d" / "to_x").is_symlink() and (data / "d" / "to_x").read_bytes() == b"zip"
    t = _tar(tmp_path / "b.tar.gz", [("t/a.txt", b"tar"), _link("t/b.txt", "a.txt"),
                                     _link("t/c.txt", "t/a.txt", tarfile.LNKTYPE)])
    assert unpack(data, [t])["members"] == 3
    assert (data / "t" / "b.txt").read_bytes() == (data / "t" / "c.txt").read_bytes() == b"tar"
    assert (data / "y.txt").read_bytes() == b"y"


def test_a_symlink_in_the_data_dir_pointing_outside_is_not_written_through(tmp_path):
    from prefbench.data.archives import unpack
    from prefbench.errors import DataError

    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    (data / "imgs").symlink_to(outside)
    for archive in (_zip(tmp_path / "a.zip", [("imgs/x.png", b"x")]), _tar(tmp_path / "a.tar", [("imgs/x.png", b"x")])):
        with pytest.raises(DataError, match="refused member 'imgs/x.png'"):
            unpack(data, [archive])
        assert list(outside.iterdir()) == []


def test_the_unpacked_size_is_capped(tmp_path, monkeypatch):
    from prefbench.data.archives import unpack
    from prefbench.errors import DataError, UsageError

    data = tmp_path / "data"
    z = _zip(tmp_path / "big.zip", [("a.bin", b"\0" * 5000), ("b.bin", b"\0" * 5000)])
    monkeypatch.setenv("PREFBENCH_MAX_UNPACK_BYTES", "8000")
    with pytest.raises(DataError, match="declares 10000 bytes unpacked, over the limit of 8000"):
        unpack(data, [z])
    assert not data.exists() or list(data.iterdir()) == []
    t = _tar(tmp_path / "big.tar.gz", [("a.bin", b"\0" * 5000), ("b.bin", b"\0" * 5000)])
    with pytest.raises(DataError, match="more than the limit of 8000 bytes"):
        unpack(data, [t])
    assert not (data / "b.bin").exists()
    monkeypatch.setenv("PREFBENCH_MAX_UNPACK_BYTES", "lots")
    with pytest.raises(UsageError, match="PREFBENCH_MAX_UNPACK_BYTES"):
        unpack(data, [z])


def test_unpacking_is_recorded_and_not_repeated(tmp_path):
    from prefbench.data.download import STATE_DIR, unpack_recorded

    data = tmp_path / "data"
    data.mkdir()
    z = _zip(data / "a.zip", [("x.txt", b"one")])
    part = {"path": "a.zip", "size": z.stat().st_size, "sha256": sha256(z)}
    assert unpack_recorded(data, "a.zip", [part], log=lambda line: None)["unpacked"] == "now"
    (data / "x.txt").write_bytes(b"edited by the user")
    assert unpack_recorded(data, "a.zip", [part], log=lambda line: None)["unpacked"] == "earlier"
    assert (data / "x.txt").read_bytes() == b"edited by the user"
    assert (data / STATE_DIR / "unpacked" / "a.zip.json").is_file()
    _zip(z, [("x.txt", b"two")])  # a new archive: unpacked again
    part = {"path": "a.zip", "size": z.stat().st_size, "sha256": sha256(z)}
    assert unpack_recorded(data, "a.zip", [part], log=lambda line: None)["unpacked"] == "now"
    assert (data / "x.txt").read_bytes() == b"two"


def test_tar_parts_are_grouped_in_order():
    from prefbench.data.archives import archive_groups

    assert archive_groups(["i.tar.gz.10", "i.tar.gz.2", "i.tar.gz.1", "a.zip", "t.tar.partab", "t.tar.partaa"]) == {
        "a.zip": ["a.zip"], "i.tar.gz": ["i.tar.gz.1", "i.tar.gz.2", "i.tar.gz.10"],
        "t.tar": ["t.tar.partaa", "t.tar.partab"]}


@needs_hub
def test_an_evil_archive_from_the_hub_is_refused_end_to_end(tmp_path, gr_repo, hub_factory):
    _zip(gr_repo / "DALLE_3.zip", [("DALLE_3/00000_01.jpeg", b"x"), ("../../escaped.txt", b"x")])
    hub = hub_factory({GR_REPO: gr_repo})
    data = tmp_path / "box" / "data"
    proc = download(["genai_rank", "--data-dir", data], tmp_path, hub.url)
    assert proc.returncode == 2
    assert "archive DALLE_3.zip: refused member '../../escaped.txt'" in proc.stderr
    nothing_outside(tmp_path / "box", data)
    assert not (tmp_path / "escaped.txt").exists() and not (data / "DALLE_3").exists()


# -- without the hub, and bad requests: exit 2 with what to do

def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@needs_hub
@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "server down"])
def test_offline_says_which_files_to_put_where(tmp_path, how):
    data = tmp_path / "data"
    if how == "HF_HUB_OFFLINE":
        proc = download(["genai_rank", "--split", "SDXL_Base", "--data-dir", data], tmp_path, "http://127.0.0.1:9",
                        HF_HUB_OFFLINE="1")
    else:
        proc = download(["genai_rank", "--split", "SDXL_Base", "--data-dir", data], tmp_path, _closed_port_url())
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert "cannot reach the hub" in err and ("HF_HUB_OFFLINE" in err if how == "HF_HUB_OFFLINE" else True)
    assert GR_REPO in err
    assert f"human_rating.json  ->  {data / 'human_rating.json'}" in err
    assert f"SDXL_Base.zip      ->  {data / 'SDXL_Base.zip'}  (an archive: unpack it into {data})" in err
    assert "Traceback" not in err


def test_without_huggingface_hub_it_says_what_to_install_and_what_to_put_where(tmp_path):
    code = ("import sys; sys.modules['huggingface_hub'] = None\n"
            "from prefbench.cli import main\n"
            f"sys.exit(main(['download', 'mmrb2', '--data-dir', {str(tmp_path / 'd')!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 2
    assert "pip install 'prefbench[hub]'" in proc.stderr and "rl-research/multimodal-rewardbench-2" in proc.stderr
    assert f"t2i/test-*.parquet  ->  {tmp_path / 'd' / 't2i/test-*.parquet'}" in proc.stderr


def _download_importing(argv: list[str]) -> tuple[int, str, bool]:
    """(exit code, stderr, whether huggingface_hub got imported) of ``prefbench ARGV`` in a fresh process."""
    code = ("import sys, contextlib, io\n"
            "from prefbench.cli import main\n"
            "err = io.StringIO()\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):\n"
            "    try:\n"
            f"        rc = main({argv!r})\n"
            "    except SystemExit as exc:\n"
            "        rc = exc.code\n"
            "print(rc)\nprint('huggingface_hub' in sys.modules)\nprint(err.getvalue())\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    rc, imported, err = proc.stdout.split("\n", 2)
    return int(rc), err, imported == "True"


@pytest.mark.parametrize("argv, message", [
    (["download", "demo", "--data-dir", "D"], "dataset 'demo' needs no download: prefbench generates it"),
    (["download", "jsonl", "--data-dir", "D"], "dataset 'jsonl' has no known download"),
    (["download", "genai_rank", "--split", "DALLE3", "--data-dir", "D"],
     "dataset 'genai_rank' has no split 'DALLE3'; splits: DALLE_3, SDXL_Base"),
    (["download", "genai_rnk", "--data-dir", "D"], "unknown dataset 'genai_rnk'"),
])
def test_what_cannot_be_downloaded_is_exit_2_before_the_hub_is_imported(argv, message):
    rc, err, imported = _download_importing(argv)
    assert rc == 2 and message in err and not imported


@pytest.mark.parametrize("argv", [["--help"], ["download", "--help"], ["list"]])
def test_help_imports_no_huggingface_hub(argv):
    rc, _, imported = _download_importing(argv)
    assert rc in (0, None) and not imported


@needs_hub
def test_unknown_repository_revision_or_files_are_exit_2(tmp_path, gr_repo, hub_factory):
    data = tmp_path / "data"
    hub = hub_factory({"someone/else": gr_repo})
    proc = download(["genai_rank", "--data-dir", data], tmp_path, hub.url)
    assert proc.returncode == 2 and f"no dataset repository {GR_REPO}" in proc.stderr, proc.stderr
    assert "human_rating.json  ->" in proc.stderr

    hub = hub_factory({GR_REPO: gr_repo})
    proc = download(["genai_rank", "--data-dir", data, "--revision", "v9"], tmp_path, hub.url)
    assert proc.returncode == 2 and "has no revision 'v9'" in proc.stderr, proc.stderr

    empty = tmp_path / "empty_repo"
    empty.mkdir()
    (empty / "README.md").write_text("moved")
    hub = hub_factory({GR_REPO: empty})
    proc = download(["genai_rank", "--data-dir", data], tmp_path, hub.url)
    assert proc.returncode == 2 and "has no file matching human_rating.json, DALLE_3.zip" in proc.stderr, proc.stderr
    assert not (data / "prefbench_download.json").exists()
