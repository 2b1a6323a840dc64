"""Issue 31 item 10, the lesser cases: a lone surrogate in a prompt, a NUL byte in an image path,
load_scorer(batch_size=-1), a plugin that calls sys.exit at import, a plugin scorer named
``../../../x``, and URL redaction of a password holding ``@`` and of API keys in query strings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prefbench.api import load_scorer
from prefbench.data.model import ImageRef
from prefbench.errors import ImageError, UsageError
from prefbench.provenance import redact_url
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import skip_without_extra
from tests.fixtures.hostile import solid_png


def test_a_lone_surrogate_in_a_prompt_is_a_usage_error():
    with load_scorer("random") as scorer, pytest.raises(UsageError, match=r"prompt is not valid Unicode.*'\\ud800'"):
        scorer.score("a cat \ud800", [solid_png((1, 2, 3))])


def test_a_nul_byte_in_a_path_is_that_images_error(tmp_path):
    with pytest.raises(ImageError, match="a path with a NUL byte"):
        ImageRef("x", path=tmp_path / "a\0b.png", root=tmp_path).read_bytes()
    with load_scorer("random", on_error="nan") as scorer:
        item = scorer.score_items([("p", [str(tmp_path / "a\0b.png"), solid_png((1, 2, 3))])])[0]
    assert item.statuses == ["error", "ok"] and "NUL" in item.errors[0]


@pytest.mark.parametrize("bad", [-1, 0, 2.5, True])
def test_load_scorer_refuses_a_bad_batch_size(bad):
    with pytest.raises(UsageError, match="batch_size must be a whole number >= 1"):
        load_scorer("random", batch_size=bad)


def test_url_redaction():
    assert redact_url("http://user:p@ss@gpu1:8000/v1") == "http://***@gpu1:8000/v1"
    assert redact_url("https://api.example/v1?api_key=sk-123&model=x") == "https://api.example/v1?api_key=***&model=x"
    assert redact_url("https://h/v1?x=1&access_token=abc#frag") == "https://h/v1?x=1&access_token=***#frag"
    assert redact_url("mail user@example.com, http://h:8000/v1") == "mail user@example.com, http://h:8000/v1"


_PLUGIN_DIST = """Metadata-Version: 2.1
Name: {name}
Version: 0.1
"""


def _plugin(root: Path, module: str, source: str, entry: str) -> Path:
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(source)
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(_PLUGIN_DIST.format(name=module.replace("_", "-")))
    (info / "entry_points.txt").write_text(f"[prefbench.scorers]\n{entry}\n")
    return root


def test_a_plugin_exiting_at_import_is_a_warning(tmp_path):
    root = _plugin(tmp_path / "p", "exits_at_import", "import sys\nsys.exit(3)\n", "quitter = exits_at_import:X")
    proc = run_cli(["list"], env_extra={"PYTHONPATH": os.pathsep.join(filter(None, [str(root),
                                                                                    os.environ.get("PYTHONPATH")]))})
    assert proc.returncode == 0, proc.stderr
    assert "quitter" in proc.stderr and "SystemExit" in proc.stderr and "random" in proc.stdout


def test_a_plugin_scorer_named_with_dots_and_slashes_stays_inside_results(tmp_path):
    source = ("from prefbench.scorers.random import RandomScorer\n\n"
              "class Escaper(RandomScorer):\n    '''random, under a hostile name'''\n    name = '../../../x'\n")
    root = _plugin(tmp_path / "p", "escaper_plugin", source, "../../../x = escaper_plugin:Escaper")
    results = tmp_path / "work" / "results"
    proc = run_cli(["run", "--scorer", "../../../x", "--limit", "2", "--results", results, "--no-progress",
                    "--bootstrap-resamples", "10"], cwd=tmp_path,
                   env_extra={"PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))})
    records = list(tmp_path.rglob("run.json"))
    assert records and all(results in r.parents for r in records), (proc.returncode, proc.stderr[-600:], records)
    assert json.loads(records[0].read_text())["scorer"]["name"] == "../../../x"


def test_a_non_ascii_token_is_refused_up_front(monkeypatch):
    skip_without_extra("serve")
    from prefbench.serve import Client
    from prefbench.serve.server import read_token

    monkeypatch.setenv("PREFBENCH_TEST_TOKEN", "s\u00e9same")
    with pytest.raises(UsageError, match="printable ASCII"):
        read_token("PREFBENCH_TEST_TOKEN")
    with pytest.raises(UsageError, match="printable ASCII"):
        Client("http://127.0.0.1:9", token="s\u00e9same")


def test_flow_grpo_says_why_a_group_is_too_big_for_one_request():
    skip_without_extra("serve")
    import numpy as np

    from prefbench.serve import flow_grpo_reward

    reward = flow_grpo_reward("http://127.0.0.1:9", max_request_images=4, retry_for=0)
    with pytest.raises(UsageError, match="5 images share the prompt 'p'.*group_by_prompt=False"):
        reward(np.zeros((5, 8, 8, 3), np.uint8), ["p"] * 5, {})


def test_a_lone_surrogate_in_a_dataset_is_a_clear_error_and_a_pair_is_text(tmp_path):
    from PIL import Image

    from prefbench.data import load_dataset

    (tmp_path / "img").mkdir()
    for name in ("a", "b"):
        Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "img" / f"{name}.png")
    line = '{"prompt_id": "p", "prompt": "cat %s", "images": ["img/a.png", "img/b.png"], "ranks": [1, 2]}\n'
    (tmp_path / "test.jsonl").write_text(line % "\\ud83d\\ude00" + line.replace('"p"', '"q"') % "\\ud800")
    proc = run_cli(["run", "--scorer", "random", "--dataset", "jsonl", "--data-dir", tmp_path, "--out",
                    tmp_path / "o", "--no-progress", "--bootstrap-resamples", "10"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "test.jsonl, line 2: a string holds a lone surrogate" in proc.stderr
    (tmp_path / "test.jsonl").write_text(line % "\\ud83d\\ude00")
    assert load_dataset("jsonl", "test", tmp_path).items[0].prompt == "cat \U0001F600"
