"""A third-party judge protocol arrives through the ``prefbench.judges`` entry-point group: listed, used by
``evaluate --judge-outputs``; a clash with a built-in loses, a broken one is a warning."""

from __future__ import annotations

import json
import os

from tests.fixtures import benchmarks as bm
from tests.fixtures.cli import run_cli

MODULE = '''
from prefbench.judges.base import JudgeProtocol, Parsed, failed


def parse(text):
    """VERDICT: LEFT / RIGHT"""
    if "VERDICT: LEFT" in text:
        return Parsed(True, winner="first")
    if "VERDICT: RIGHT" in text:
        return Parsed(True, winner="second")
    return failed("no VERDICT line")


PROTOCOL = JudgeProtocol("shouty", "pairwise", "a judge that shouts its verdict", parse, "wrong", "my paper, sec. 3")


def sloppy(text):
    if "crash" in text:
        raise KeyError("verdict")
    return Parsed(True, winner="left")


SLOPPY = JudgeProtocol("sloppy", "pairwise", "a parser with bugs", sloppy, "wrong", "nowhere")
CLASH = JudgeProtocol("mmrb2", "pairwise", "not the real one", parse, "wrong", "nowhere")
'''


def _site(tmp_path):
    site = tmp_path / "site"
    (site / "shouty_judge-0.1.dist-info").mkdir(parents=True)
    (site / "shouty_judge.py").write_text(MODULE)
    (site / "shouty_judge-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: shouty-judge\n"
                                                                  "Version: 0.1\n")
    (site / "shouty_judge-0.1.dist-info" / "entry_points.txt").write_text(
        "[prefbench.judges]\nshouty = shouty_judge:PROTOCOL\nmmrb2 = shouty_judge:CLASH\n"
        "broken = shouty_judge_missing:PROTOCOL\nsloppy = shouty_judge:SLOPPY\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_a_plugin_protocol_is_listed_and_scores_judge_outputs(tmp_path):
    env = _site(tmp_path)
    proc = run_cli(["list", "--json"], env_extra=env)
    assert proc.returncode == 0, proc.stderr
    judges = {j["name"]: j for j in json.loads(proc.stdout)["judges"]}
    assert judges["shouty"]["source"] == "plugin: shouty-judge"
    assert judges["mmrb2"]["source"] == "builtin" and "broken" not in judges
    assert judges["mmrb2"]["kind"] == "pairwise" and judges["mmrb2"]["official_policy"] == "exclude"
    assert judges["mmrb2"]["template"]["verified"] and judges["mmrb2"]["answer"]["candidates"] == ["A", "B"]
    assert judges["shouty"]["template"] is None and judges["shouty"]["answer"] is None
    assert "sloppy" in judges
    assert "clashes with a built-in judge protocol" in proc.stderr
    assert "could not load plugin judge protocol 'broken'" in proc.stderr

    bm.write_hpdv3(tmp_path / "h", n=4)
    rows = [{"prompt_id": str(k), "image_a": 0, "image_b": 1, "order": "forward",
             "text": ["VERDICT: LEFT", "VERDICT: RIGHT", "VERDICT: LEFT", "no idea"][k]} for k in range(4)]
    (tmp_path / "j.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli(["evaluate", "--dataset", "hpdv3", "--data-dir", tmp_path / "h", "--judge-outputs",
                    tmp_path / "j.jsonl", "--protocol", "shouty", "--json", "--bootstrap-resamples", "50"],
                   env_extra=env)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["protocol"] == "shouty" and got["accuracy"] == 0.5 and got["n_parse_failures"] == 1
    assert "my paper, sec. 3" in got["policy_rule"]


def test_a_plugin_parser_bug_is_an_error_naming_the_line_never_a_number(tmp_path):
    env = _site(tmp_path)
    bm.write_hpdv3(tmp_path / "h", n=2)
    for text, message in (("crash now", "line 1: judge protocol 'sloppy''s parser failed on this text: KeyError"),
                          ("fine", "line 1: judge protocol 'sloppy' read this text without a winner")):
        row = {"prompt_id": "0", "image_a": 0, "image_b": 1, "order": "forward", "text": text}
        (tmp_path / "j.jsonl").write_text(json.dumps(row) + "\n")
        proc = run_cli(["evaluate", "--dataset", "hpdv3", "--data-dir", tmp_path / "h", "--judge-outputs",
                        tmp_path / "j.jsonl", "--protocol", "sloppy"], env_extra=env)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
