"""The engine layer: the registry (built-ins, a plugin engine from an installed package, the
clash and missing-extra rules), option routing between a scorer and its engine, and a plugin
engine running all four VLM scorers unchanged through the CLI."""

from __future__ import annotations

import importlib.util
import json

import pytest

from prefbench.errors import UsageError
from prefbench.registry import build, engine_entries, load_engine
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import requires_extra


def _rows(out):
    return [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]


def test_builtin_engines_are_listed():
    names = engine_entries(include_plugins=False)
    assert {"transformers", "openai", "vllm"} <= set(names)
    assert names["vllm"].extra == "vllm" and names["openai"].extra == "openai"
    proc = run_cli(["list"])
    assert proc.returncode == 0 and "Engines of the VLM scorers" in proc.stdout and "vllm" in proc.stdout


@requires_extra("vlm")  # the VLM scorers' own extra is checked before their engine's
@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed in this environment")
def test_a_missing_engine_names_how_to_get_it(tmp_path):
    proc = run_cli(["run", "--scorer", "expected_rating", "--engine", "vllm", "--model", "m", "--out", tmp_path / "r"])
    assert proc.returncode == 1 and "scripts/setup_vllm_env.sh" in proc.stderr and "engine 'vllm' needs vllm" in proc.stderr


def test_options_go_to_the_scorer_or_its_engine(tiny_vlm_dir):
    scorer, spec = build("expected_rating", {"model": str(tiny_vlm_dir), "max_new_tokens": 0, "dtype": "float32",
                                             "share_images": False})
    assert spec["engine"] == "transformers" and scorer.engine.dtype == "float32"
    assert spec["resolved"]["dtype"] == "float32" and spec["resolved"]["max_new_tokens"] == 0
    assert "share_images" in scorer.transport_params  # does not change scores: not in the run's identity
    with pytest.raises(UsageError, match=r"no option\(s\) top_logprobs; its options: .*engine transformers options"):
        build("expected_rating", {"model": "m", "top_logprobs": 5})
    with pytest.raises(UsageError, match="engine 'transformers': option dtype must be str"):
        build("expected_rating", {"model": "m", "dtype": 3})
    with pytest.raises(UsageError, match="dtype must be one of"):
        build("expected_rating", {"model": "m", "dtype": "float8"})
    with pytest.raises(UsageError, match="runs in-process only"):
        build("random", {}, engine="openai")


def test_plugin_engine_is_found_and_a_clash_with_a_builtin_warns(with_plugin):
    from prefbench import registry

    registry.ENGINES._cache_key = None  # entry points are scanned once per sys.path: scan again here
    with pytest.warns(UserWarning, match="plugin engine 'transformers'.*the built-in wins"):
        entries = engine_entries()
    assert entries["echo"].source.startswith("plugin: prefbench-example-plugin")
    assert entries["transformers"].source == "builtin"
    assert load_engine("echo").__name__ == "EchoEngine"


@requires_extra("vlm")  # the VLM scorer classes load only with it, whatever the engine
@pytest.mark.parametrize("scorer", ["expected_rating", "anchor_pairwise", "naive_sampling", "zero_shot"])
def test_every_vlm_scorer_runs_unchanged_on_a_plugin_engine(scorer, with_plugin, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(["run", "--scorer", scorer, "--engine", "echo", "--model", "echo-model", "--dataset", "demo",
                    "--limit", "3", "--out", out, "--no-progress", "--json", "-S", "sharpness=3.0",
                    "-S", "max_new_tokens=8"])
    assert proc.returncode == 0, proc.stderr
    rows = _rows(out)
    assert rows and all(r["status"] == "ok" for r in rows), rows[:2]
    rec = json.loads((out / "run.json").read_text())
    assert rec["scorer"]["engine"] == "echo" and rec["scorer"]["resolved"]["sharpness"] == 3.0
    assert rec["scorer_summary"]["engine"]["name"] == "echo"
    if scorer == "anchor_pairwise":
        anchors = [r for r in rows if r.get("anchor_index") == r["image_index"]]
        assert anchors and all(r["score"] == 0.5 and r["prob"] == 0.5 for r in anchors)
        assert all(0 < r["prob"] < 1 for r in rows)
    # another engine option value is another run (it changes the scores)
    proc = run_cli(["run", "--scorer", scorer, "--engine", "echo", "--model", "echo-model", "--dataset", "demo",
                    "--limit", "3", "--no-progress", "--json", "--results", tmp_path / "res", "-S", "sharpness=1.0",
                    "-S", "max_new_tokens=8"])
    assert proc.returncode == 0 and json.loads(proc.stdout)["run_dir"] != str(out)


@requires_extra("vlm")  # the VLM scorer classes load only with it, whatever the engine
def test_a_failed_rollout_is_a_retryable_error_not_a_score(with_plugin):
    from prefbench.data.model import ImageRef, Item

    scorer, _ = build("expected_rating", {"model": "m", "max_new_tokens": 4}, engine="echo")
    scorer.setup()
    png = _png()
    item = Item("fail-me", "a red cube", [ImageRef("a.png", data=png), ImageRef("b.png", data=png)], [1, 2])
    ok = Item("fine", "a red cube", [ImageRef("a.png", data=png)], [1])
    res = scorer.score_batch([(item, [0, 1]), (ok, [0])])
    assert all(r.status == "error" and r.retryable and r.score is None for r in res[0].values())
    assert "echo: asked to fail" in res[0][0].error
    assert res[1][0].status == "ok" and not res[1][0].retryable


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_an_answer_token_with_a_word_start_marker_is_read_as_written_after_the_tag():
    from prefbench.engines.transformers import TransformersEngine

    class SentencePieceLike:
        """How a Llama-2 / Mistral v0.x tokenizer splits a digit alone ("▁" + "1") and after
        "<answer>" (just "1"); the ids are made up."""

        table = {"1": [5, 17], "<answer>": [40, 41, 42], "<answer>1": [40, 41, 42, 17],
                 "10": [5, 17, 16], "<answer>10": [40, 41, 42, 17, 16]}

        def encode(self, text, add_special_tokens=False):
            return self.table[text]

    engine = TransformersEngine(model="m")
    engine.tokenizer = SentencePieceLike()
    assert engine.single_token_id("1") == 17
    with pytest.raises(ValueError, match="needs single-token answers"):
        engine.single_token_id("10")


def test_vllm_submits_one_request_per_shared_prefix_first():
    from prefbench.engines.base import Job
    from prefbench.engines.vllm import VLLMEngine

    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "which?"}]}]
    jobs = [Job(msgs, ["a", "b"], "1", ["item1/0", "item1/1"]), Job(msgs, ["a", "c"], "2", ["item1/0", "item1/2"]),
            Job(msgs, ["d", "e"], "3", ["item2/0", "item2/1"]), Job(msgs, ["a", "f"], "4", ["item1/0", "item1/3"])]
    engine = VLLMEngine(model="m")
    groups = [engine._prefix_group(j) for j in jobs]
    # item1's first comparison primes the cache; item2 has one comparison: nothing to share
    assert engine._waves(groups, 4) == [[0], [1, 2, 3]]
    assert VLLMEngine(model="m", prefix_caching=False)._waves(groups, 4) == [[0, 1, 2, 3]]
