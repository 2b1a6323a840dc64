"""A judge protocol's prompt: fetched at its pinned commit from a server on 127.0.0.1 (stand-in
templates written here; the real prompts are never copied into prefbench), checked by sha256,
cached, read out of a Python source file with ast; offline errors name the file and the place."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from prefbench.errors import DataError, MissingDataError, UsageError
from prefbench.judges import lookup
from prefbench.judges.base import TemplateSource
from prefbench.judges.templates import cached_path, extract_literal, source_url, template
from tests.fixtures.static_server import static_server

#: a stand-in source file shaped like the projects' own (an f-string prompt inside a script)
STAND_IN = '''import json

def build(prompt):
    other = "Not this one"
    return {"type": "text",
            "text": f"Compare the two images for the caption.\\nAnswer <answer>Image 1 is better</answer> "
                    f"or <answer>Image 2 is better</answer>.\\nCaption: [{prompt}]"}
'''
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def raw_host(tmp_path, monkeypatch):
    """A GitHub-raw-shaped static server on 127.0.0.1; yields the folder it serves."""
    root = tmp_path / "raw"
    root.mkdir()
    with static_server(root) as url:
        monkeypatch.setenv("PREFBENCH_GITHUB_RAW", url)
        monkeypatch.setenv("PREFBENCH_CACHE", str(tmp_path / "cache"))
        yield root


def _serve(root, repo, commit, path, data: bytes):
    where = root / repo / commit / path
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_bytes(data)
    return where


def test_a_pinned_source_is_fetched_checked_cached_and_its_literal_read(raw_host, monkeypatch):
    data = STAND_IN.encode()
    _serve(raw_host, "someone/judge", COMMIT, "eval/judge prompt.py", data)
    src = TemplateSource("github:someone/judge", COMMIT, "eval/judge prompt.py", hashlib.sha256(data).hexdigest(),
                         literal="Compare the two images")
    proto = replace(lookup("unifiedreward_think"), template=src)
    text, record = template(proto)
    assert text == ("Compare the two images for the caption.\nAnswer <answer>Image 1 is better</answer> "
                    "or <answer>Image 2 is better</answer>.\nCaption: [{prompt}]")
    assert record == {"source": "pinned", "repo": "github:someone/judge", "commit": COMMIT,
                      "path": "eval/judge prompt.py", "sha256": src.sha256, "literal": "Compare the two images",
                      "text_sha256": hashlib.sha256(text.encode()).hexdigest()}
    local = cached_path("unifiedreward_think", src)
    assert local.read_bytes() == data
    monkeypatch.setenv("PREFBENCH_GITHUB_RAW", "http://127.0.0.1:9")  # the host is gone: the cache serves
    assert template(proto)[0] == text


def test_the_builtin_pinned_url_is_fetched_and_a_different_file_refused(raw_host):
    proto = lookup("genai_bench")
    src = proto.template
    assert source_url(src).endswith(f"/TIGER-AI-Lab/GenAI-Bench/{src.commit}/genaibench/templates/image_generation/"
                                    "pairwise.txt")
    stand_in = b"Judge the two images for <prompt>: <left_image> <right_image>. Answer [[A>B]] or [[B>A]].\n"
    _serve(raw_host, "TIGER-AI-Lab/GenAI-Bench", src.commit, src.path, stand_in)
    with pytest.raises(DataError, match=f"has sha256 {hashlib.sha256(stand_in).hexdigest()}, pinned {src.sha256}"):
        template(proto)
    assert not cached_path("genai_bench", src).exists()  # removed, not kept


def test_offline_the_error_names_the_url_the_sha256_and_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PREFBENCH_GITHUB_RAW", "http://127.0.0.1:9")  # nothing listens there
    proto = lookup("mmrb2")
    with pytest.raises(MissingDataError) as exc:
        template(proto)
    msg = str(exc.value)
    local = tmp_path / "cache" / "judges" / "mmrb2" / proto.template.commit / "evaluation_prompts.py"
    assert f"cannot fetch its prompt from http://127.0.0.1:9/facebookresearch/MMRB2/{proto.template.commit}/" in msg
    assert f"Put that file (sha256 {proto.template.sha256}) at {local}" in msg and "template=FILE" in msg


def test_a_hub_source_is_read_from_the_resolve_url(tmp_path, monkeypatch):
    from prefbench.testing.hub_server import HubServer

    repo = tmp_path / "repo"
    repo.mkdir()
    data = b"Does this picture show \"{}\"? Say Yes or No.\n"
    (repo / "prompt.txt").write_bytes(data)
    monkeypatch.setenv("PREFBENCH_CACHE", str(tmp_path / "cache"))
    with HubServer({"someone/judge-model": repo}, "model", max_seconds=60) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        commit = hub.repos["someone/judge-model"].sha
        src = TemplateSource("someone/judge-model", commit, "prompt.txt", hashlib.sha256(data).hexdigest())
        text, record = template(replace(lookup("vqascore"), template=src))
    assert text == data.decode() and record["commit"] == commit


def test_template_file_overrides_and_unverified_sources_are_not_fetched(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("My own judge prompt for {prompt}.\n")
    text, record = template(lookup("rationalrewards"), mine)
    assert text == "My own judge prompt for {prompt}.\n" and record["source"] == "file"
    with pytest.raises(DataError, match="template file not found"):
        template(lookup("rationalrewards"), tmp_path / "nope.txt")
    unpinned = replace(lookup("rationalrewards"), template=TemplateSource("github:a/b", None, "p.txt", None))
    with pytest.raises(UsageError, match="no verified commit and sha256"):
        template(unpinned)


def test_extract_literal_reads_without_running_and_says_what_is_missing():
    assert extract_literal("X = 'a' + 'b'\nY = '''Rate it {x}'''\n", "Rate") == "Rate it {x}"
    assert extract_literal('raise SystemExit\nP = ("Judge: "\n     f"{caption!r} now")\n', "Judge") == \
        "Judge: {caption} now"
    with pytest.raises(DataError, match="no string literal starting 'Compare'"):
        extract_literal("X = 1\n", "Compare")
    with pytest.raises(DataError, match="is not Python"):
        extract_literal("def (:\n", "Compare")
