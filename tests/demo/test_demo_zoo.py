"""The demo zoo: the no-argument suite, bundled checkpoints, the miniature tables, the recipe."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prefbench.demo_zoo import ASSETS, BUNDLED, bundled_model
from prefbench.demo_zoo.recipe import CHECKPOINTS, model_commands, result_commands
from prefbench.demo_zoo.tables import render
from tests.fixtures.cli import REPO, run_cli
from tests.fixtures.extras import skip_without_extra


@pytest.mark.slow
def test_suite_runs_offline_and_prints_a_leaderboard(tmp_path):
    proc = run_cli(["run", "--limit", "8", "--no-progress"], cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"},
                   timeout=900)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "demo world, test split" in out and "random floor" in out and "ceiling (noise-free utility)" in out
    data = json.loads(run_cli(["run", "--limit", "8", "--no-progress", "--json"], cwd=tmp_path,
                              env_extra={"HF_HUB_OFFLINE": "1"}, timeout=900).stdout)
    by_scorer = {row["scorer"]: row for row in data}
    assert by_scorer["random"]["cached"], "the second invocation must reuse the finished runs"
    for scorer in BUNDLED:
        row = by_scorer[scorer]
        if bundled_model(scorer) is not None:
            assert "skipped" not in row, row
            assert row["counts"]["ok"] + row["counts"]["unparsed"] + row["counts"]["error"] > 0


def test_suite_refuses_a_model_without_a_scorer(tmp_path):
    proc = run_cli(["run", "--model", "x"], cwd=tmp_path)
    assert proc.returncode == 2 and "--scorer is required" in proc.stderr


@pytest.mark.parametrize("scorer", ["anchor_pairwise", "clip", "expected_rating"])
def test_a_lone_scorer_on_the_demo_is_the_suites_committed_run(tmp_path, scorer):
    """README "One scorer": `prefbench run --scorer X` (no --model, the demo) takes the suite row's
    options (the token budget the checkpoint was trained with, clip's preprocessing), so it has
    the committed run's config hash and is answered from it, writing nothing (issue 30 item 1)."""
    from prefbench.demo_zoo.suite import ROWS
    from prefbench.registry import lookup

    if not lookup(scorer).installed or bundled_model(scorer) is None:
        pytest.skip(f"{scorer}: extra or bundled checkpoint missing")
    options = next(params for _, name, params in ROWS if name == scorer)
    committed = [d for d in sorted((REPO / "results" / "demo-test").glob(f"{scorer}-*"))
                 if json.loads((d / "run.json").read_text())["scorer"]["passed"].keys() - {"model", "seed"}
                 == options.keys()]
    assert committed, f"no committed suite run of {scorer}"
    copy = tmp_path / "results" / "demo-test" / committed[0].name
    shutil.copytree(committed[0], copy)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = run_cli(["run", "--scorer", scorer, "--no-progress"], cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"},
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[cached]" in proc.stdout and f"run: results/demo-test/{committed[0].name}" in proc.stdout, proc.stdout
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_the_suite_says_why_a_row_is_below_the_random_floor(tmp_path):
    """The first leaderboard a user sees: naive_sampling's 0.219 under the random floor comes with
    its reason on screen; a row whose CI reaches the floor (zero-shot) gets no note."""
    skip_without_extra("vlm")
    shutil.copytree(REPO / "results" / "demo-test", tmp_path / "results" / "demo-test")
    proc = run_cli(["run", "--no-progress"], cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("cached: ") == 7, proc.stderr[-2000:]
    notes = [line for line in proc.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1 and notes[0].startswith("note: GRPO naive_sampling is below the random floor: "), notes
    assert "counts a model tie as wrong" in notes[0] and "docs/demo-world.md" in notes[0]


def test_no_progress_silences_the_frameworks_bars_too(tmp_path):
    """--no-progress: neither prefbench's bar nor transformers' "Loading weights" one; without it
    both are there (issue 30 item 10)."""
    skip_without_extra("vlm")
    args = ["run", "--scorer", "expected_rating", "--limit", "1", "--results"]
    quiet = run_cli([*args, tmp_path / "a", "--no-progress"], cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"})
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert "Loading weights" not in quiet.stderr and "it/s" not in quiet.stderr, quiet.stderr[-2000:]
    loud = run_cli([*args, tmp_path / "b"], cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"})
    assert "Loading weights" in loud.stderr and "img/s" in loud.stderr


@pytest.mark.slow
def test_a_limited_suite_says_so_in_its_header(tmp_path):
    """`prefbench run --limit 2`: the leaderboard's first line says only 2 items were scored
    (and names the split it ran), not "demo world, test split" as if it were the whole split."""
    args = ["run", "--limit", "2", "--split", "ood", "--no-progress", "--json"]
    rows = json.loads(run_cli(args, cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1", "PREFBENCH_CACHE": str(tmp_path)},
                              timeout=900).stdout)
    from prefbench.demo_zoo.suite import leaderboard_text

    head = leaderboard_text(rows).splitlines()[0]
    assert head.startswith("demo world, ood split — only the first 2 items (--limit), not the whole split"), head
    whole = [{**r, "limit": None} for r in rows]
    assert "--limit" not in leaderboard_text(whole).splitlines()[0]


def test_every_scorer_checkpoint_is_built_by_the_recipe():
    assert set(BUNDLED.values()) <= set(CHECKPOINTS)


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_bundled_checkpoints_are_small_and_complete(name):
    folder = ASSETS / name
    if not (folder / "config.json").is_file():
        pytest.skip(f"{folder} is not built (python -m prefbench.demo_zoo.recipe)")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 10e6, f"{name} is {size / 1e6:.1f} MB"
    assert (folder / "model.safetensors").is_file()
    assert (folder / "prefbench_train.json").is_file() or (folder / "prefbench_pretrain.json").is_file()


def test_tables_on_real_runs(tmp_path):
    for seed in (0, 1):
        assert run_cli(["run", "--scorer", "random", "--seed", str(seed), "--results", "res", "--no-progress"],
                       cwd=tmp_path).returncode == 0
    assert run_cli(["run", "--scorer", "demo_oracle", "--results", "res", "--no-progress"], cwd=tmp_path).returncode == 0
    text = render(tmp_path / "res", splits=("test",), n_resamples=500)
    assert "| ceiling: noise-free utility | `demo_oracle` | 0.877" in text
    assert "| random floor | `random` |" in text
    assert "| trained vs zero-shot (paper Tables 1-2: zero-shot rows) | not run |" in text


def test_recipe_commands_are_the_documented_cli():
    cmds = model_commands(ASSETS / "work")
    assert cmds[1][1:5] == ["-m", "prefbench", "train", "--task"]
    assert any("--write-baseline" in c for c in result_commands(ASSETS / "res"))
    from prefbench.demo_zoo.recipe import _shown

    # GRPO runs get one thread each, as the shipped scorers were trained; the others keep the default
    assert _shown(cmds[1]).startswith("OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python -m prefbench train --task rating")
    assert _shown(cmds[0]).startswith("python -m prefbench.demo_zoo.pretrain")
    # every bundled checkpoint has its command, the SFT baselines included
    outputs = {Path(c[c.index("--output") + 1]).name for c in cmds if "--output" in c}
    assert outputs == {"rating", "pairwise", "sft-rating", "sft-pairwise"}
    assert all("--method" in c and c[c.index("--method") + 1] == "sft" for c in cmds if "sft-" in " ".join(c))
    scored = [c for c in result_commands(ASSETS / "res") if "prefbench-demo/sft-rating" in c]
    assert [c[c.index("--split") + 1] if "--split" in c else "test" for c in scored] == ["test", "ood"]


def test_pretraining_scenes_are_fresh_deterministic_and_captioned():
    from itertools import islice

    from prefbench.data import load_dataset
    from prefbench.data.demo import ALIGNMENT_FLAWS, scene_pairs

    def singles(seed, n):
        return [c for g in islice(scene_pairs(seed), n) for c in g["candidates"]]

    first, again = singles(0, 20), singles(0, 20)
    assert [c for _, c, _ in first] == [c for _, c, _ in again]
    assert all(a.tobytes() == b.tobytes() for (a, _, _), (b, _, _) in zip(first, again))
    assert [c for _, c, _ in singles(1, 20)] != [c for _, c, _ in first]
    assert all(img.size == (112, 112) for img, _, _ in first)
    # never a benchmark image; captions in the prompt grammar, defects named, flaws recorded
    bench = {it.images[k].open().tobytes() for it in load_dataset("demo", "test").items[:30] for k in range(it.n_images)}
    assert not bench & {img.tobytes() for img, _, _ in first}
    groups = list(islice(scene_pairs(0), 150))
    caps = [c for g in groups for _, c, _ in g["candidates"]]
    assert all(c.split()[0] in ("a", "one", "two", "three") and " background, " in c for c in caps)
    assert any("blurry" in c for c in caps) and any("clean and sharp" in c for c in caps)
    for g in groups:
        for _, cap, flaws in g["candidates"]:
            # an image without alignment flaws shows exactly what its prompt asked for
            if not set(flaws) & set(ALIGNMENT_FLAWS):
                assert cap.split(",")[0] == g["prompt"]
            else:
                assert cap.split(",")[0] != g["prompt"]
            assert ("blurry" in cap) == ("blur" in flaws)


def test_pretraining_examples_and_altered_texts():
    import random
    import re

    from prefbench.data.demo import scene_pairs
    from prefbench.demo_zoo.pretrain import (
        JUDGE_QUESTIONS,
        SCHEDULE,
        TASKS,
        altered,
        facts,
        make_example,
        shape_count,
    )

    rng = random.Random(0)
    assert altered("a red circle left of a blue square", random.Random(3)) in {
        "a blue square left of a red circle"} | {f"a {c} circle left of a blue square" for c in
                                                 ("green", "blue", "yellow", "purple", "orange")} | {
        f"a red circle left of a blue {s}" for s in ("circle", "triangle")}
    for _ in range(50):
        for text in ("two red circles", "one green triangle", "a blue square above a yellow circle"):
            new = altered(text, rng)
            assert new != text and len(new.split()) == len(text.split())
    assert facts("two red circles on a grey background, blurry, noisy", ["colour", "blur", "noise"]) == {
        "errors": 1, "defects": 2, "shapes": 2}
    assert set(SCHEDULE) == set(TASKS)
    counts = {t: 0 for t in ("yes", "no")}
    seen = set()
    stream = scene_pairs(0)
    for k in range(160):
        ex = make_example(SCHEDULE[k % len(SCHEDULE)], stream, rng)
        assert ex["user"].count("<image>") == len(ex["images"])
        if "Describe this image." in ex["user"]:
            assert "<answer>" not in ex["answer"] and ex["answer"].endswith(".")
            continue
        answer = ex["answer"].split("<answer>")[1].removesuffix("</answer>")
        if "Does this image show" in ex["user"]:
            yes, no = ex["user"].split("Answer ")[-1].replace(" if it does not.", "").split(" if it does, or ")
            assert answer in (yes, no) and yes != no
            counts["yes" if answer == yes else "no"] += 1
        if "Which image shows more shapes?" in ex["user"]:
            c1, c2 = ex["answer"][len("<think>Image 1 shows "):].split("</think>")[0].split(". Image 2 shows ")
            second, first = re.search(r"(\S+) if Image 2 shows more, or (\S+) if Image 1", ex["user"]).groups()
            assert answer == (second if shape_count(c2) > shape_count(c1) else first)
        if "on a scale from 0" in ex["user"]:
            # the numeric answer is the counted fact of the image, capped at the stated top of the scale
            high = int(re.search(r"on a scale from 0 \(\w+\) to (\d)", ex["user"]).group(1))
            cap = ex["answer"][len("<think>The image shows "):].split(".</think>")[0]
            assert answer.isdigit() and int(answer) <= high
            if "shapes this image shows" in ex["user"]:
                assert int(answer) == min(high, shape_count(cap))
            if "quality defects" in ex["user"]:
                assert int(answer) == min(high, sum(w in cap for w in ("blurry", "noisy", "compressed",
                                                                      "overexposed", "low contrast")))
            seen.add("scale")
        if len(ex["images"]) == 2 and not ex["user"].startswith("Image 1:"):  # judge (compare has no intro)
            assert any(q[0] in ex["user"] for q in JUDGE_QUESTIONS)
            assert "Two images were generated from the same text prompt" in ex["user"] or "Text prompt:" in ex["user"]
            seen.add("judge")
    assert counts["yes"] > 3 and counts["no"] > 3
    assert seen == {"scale", "judge"}


def test_every_two_image_wording_is_answered_by_the_fact_it_asks_about():
    import random
    import re

    from prefbench.data.demo import QUALITY_WORDS, scene_pairs
    from prefbench.demo_zoo.pretrain import JUDGE_QUESTIONS, MARK, make_example, shape_count, unmarked
    from prefbench.scorers.vlm.prompts import load_template

    # no wording asks what people prefer: the pairwise scorer's question stays unseen in pre-training
    pairwise_question = load_template("pairwise_v1").split("\n")[3]
    for question, _, fact in JUDGE_QUESTIONS:
        assert fact in ("defects", "errors", "shapes")
        assert not re.search(r"prefer|people|better|like", question, re.I) and question != pairwise_question

    def fact_of(description: str, fact: str) -> int:
        if fact == "errors":
            return len(MARK.findall(description))
        if fact == "defects":
            return sum(w in description for w in QUALITY_WORDS.values())
        return shape_count(unmarked(description))

    stream, rng, asked, fixed = scene_pairs(3), random.Random(3), set(), 0
    for _ in range(300):
        ex = make_example("judge", stream, rng)
        question, verb, fact = next(q for q in JUDGE_QUESTIONS if q[0] in ex["user"])
        asked.add(question)
        d1, d2 = (re.search(rf"Image {k} shows (.*?)\.(?: Image|</think>)", ex["answer"]).group(1) for k in (1, 2))
        second, first = re.search(rf"(\S+) if Image 2 {re.escape(verb)}, or (\S+) if Image 1 {re.escape(verb)}",
                                  ex["user"]).groups()
        fixed += (second, first) == ("1", "0")
        a, b = fact_of(d1, fact), fact_of(d2, fact)
        assert a != b
        two_wins = b > a if fact == "shapes" else b < a
        assert ex["answer"].endswith(f"<answer>{second if two_wins else first}</answer>")
    assert asked == {q[0] for q in JUDGE_QUESTIONS}
    # most two-way questions use the pairwise scorer's labels (1 = Image 2), the rest random ones
    assert 0.65 < fixed / 300 < 0.9


def test_reasoning_marks_where_an_image_deviates_from_its_prompt():
    from itertools import islice

    from prefbench.data.demo import ALIGNMENT_FLAWS, scene_pairs
    from prefbench.demo_zoo.pretrain import annotated

    assert annotated("two blue circle on a grey background, blurry", "three red circles on a grey background",
                     ["colour", "count", "blur"]) == (
        "two (asked three) blue (asked red) circle on a grey background, blurry")
    # shape kept, count changed: the plural alone is no deviation
    assert annotated("one red circle on a white background, clean and sharp", "two red circles on a white background",
                     ["count"]) == "one (asked two) red circle on a white background, clean and sharp"
    assert annotated("a blue square left of a green circle on a black background, noisy",
                     "a green circle left of a blue triangle on a black background", ["relation", "shape", "noise"]) == (
        "a blue square (asked triangle) left of (swapped) a green circle on a black background, noisy")
    for g in islice(scene_pairs(0), 200):
        for _, cap, flaws in g["candidates"]:
            text = annotated(cap, g["prompt"], flaws)
            n_marks = text.count("(asked ") + text.count("(swapped)")
            wrong = [f for f in flaws if f in ALIGNMENT_FLAWS]
            # every deviation the generator drew is marked, once
            assert n_marks == len(wrong), (g["prompt"], cap, flaws, text)
            assert text.replace(" (swapped)", "").split(" (asked")[0] in cap


@pytest.mark.slow
def test_pretrain_runs_and_saves_a_loadable_base(tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from prefbench.demo_zoo.pretrain import pretrain

    rec = pretrain(tmp_path / "base", steps=3, batch_size=4, log=lambda *a: None)
    assert rec["steps"] == 3 and rec["n_examples"] == 12 and len(rec["loss_curve"]) == 1
    assert json.loads((tmp_path / "base" / "prefbench_pretrain.json").read_text())["seed"] == 0
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp_path / "base")
    assert model.config.text_config.hidden_size == 96
    assert AutoProcessor.from_pretrained(tmp_path / "base").tokenizer.convert_tokens_to_ids("<|image_pad|>") is not None


def test_vision_labels_read_the_generators_record():
    from prefbench.data.demo import scene_pairs
    from prefbench.demo_zoo.pretrain import _vision_fields, vision_labels

    fields = _vision_fields()
    lab = vision_labels("two blue circles on a grey background, blurry, compressed", ["colour", "blur", "jpeg"])
    named = {k: fields[k][v] for k, v in lab.items() if v != -100}
    assert named == {"kind": "count", "count": "two", "colour1": "blue", "shape1": "circle", "background": "grey",
                     "blur": "yes", "noise": "no", "jpeg": "yes", "clipping": "no", "low_contrast": "no"}
    lab = vision_labels("a red square above a green triangle on a white background, clean and sharp", ["relation"])
    named = {k: fields[k][v] for k, v in lab.items() if v != -100}
    assert named == {"kind": "relation", "relation": "above", "colour1": "red", "shape1": "square",
                     "colour2": "green", "shape2": "triangle", "background": "white", "blur": "no", "noise": "no",
                     "jpeg": "no", "clipping": "no", "low_contrast": "no"}
    assert lab["count"] == -100
    # every caption the pre-training stream makes parses, and its defects match the flaw record
    stream = scene_pairs(3)
    for _ in range(200):
        for _img, cap, flaws in next(stream)["candidates"]:
            lab = vision_labels(cap, flaws)
            assert all(lab[q] == int(q in flaws) for q in ("blur", "noise", "jpeg", "clipping", "low_contrast"))
            assert (lab["count"] == -100) == (lab["kind"] == 1) == (lab["colour2"] != -100)


@pytest.mark.slow
def test_vision_stage_trains_the_tower_and_reports_held_out_accuracy(tmp_path):
    import torch

    from prefbench.demo_zoo.pretrain import _vision_fields, build_base, pretrain, pretrain_vision

    model, processor = build_base(0)
    before = {k: v.clone() for k, v in model.model.visual.state_dict().items()}
    text_before = model.lm_head.weight.clone()
    rec = pretrain_vision(model, processor, steps=3, batch_size=4, log=lambda *a: None)
    assert rec["n_images"] == 12 and set(rec["held_out_accuracy"]) == set(_vision_fields())
    assert all(0.0 <= a <= 1.0 for a in rec["held_out_accuracy"].values())
    changed = [k for k, v in model.model.visual.state_dict().items() if not torch.equal(v, before[k])]
    assert "merger.mlp.2.weight" in changed and "patch_embed.proj.weight" in changed
    assert torch.equal(model.lm_head.weight, text_before)  # only the tower trains in this stage
    full = pretrain(tmp_path / "base", steps=3, batch_size=4, vision_steps=3, log=lambda *a: None)
    assert full["vision_stage"]["steps"] == 3 and full["vision_lr_scale"] == 0.2
    saved = json.loads((tmp_path / "base" / "prefbench_pretrain.json").read_text())
    assert saved["vision_stage"]["held_out_accuracy"] == full["vision_stage"]["held_out_accuracy"]


def test_pretraining_batches_use_the_positions_generate_uses(tiny_vlm_dir):
    """Pre-training must feed mm_token_type_ids: without them Qwen2.5-VL's forward uses 1-D
    positions for the image tokens while generate() (every scorer, every GRPO rollout) uses 3-D
    M-RoPE, and a model trained that way describes images well only under teacher forcing."""
    import random

    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from prefbench.data.demo import scene_pairs
    from prefbench.demo_zoo.pretrain import _messages, collate, encode, make_example

    processor = AutoProcessor.from_pretrained(tiny_vlm_dir)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_vlm_dir).eval()
    stream, rng = scene_pairs(0), random.Random(0)
    exs = [make_example("describe", stream, rng), make_example("compare", stream, rng)]
    batch = collate([encode(processor, ex) for ex in exs], processor.tokenizer.pad_token_id)
    assert batch["mm_token_type_ids"].sum() == batch["image_grid_thw"].prod(-1).sum() // 4
    with torch.no_grad():
        batched = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        for row, ex in enumerate(exs):
            text = processor.apply_chat_template(_messages(ex), tokenize=False)
            native = processor(text=[text], images=ex["images"], return_tensors="pt")
            n = native["input_ids"].shape[1]
            assert torch.equal(batch["input_ids"][row, :n], native["input_ids"][0])
            ref = model(**native).logits[0]
            assert torch.allclose(batched[row, :n], ref, atol=1e-4), (batched[row, :n] - ref).abs().max()
            no_types = model(**{k: v for k, v in native.items() if k != "mm_token_type_ids"}).logits[0]
            assert not torch.allclose(no_types, ref, atol=1e-4)  # the positions matter


def test_reasoning_probe_utilities_rank_the_demo_world():
    """scripts/demo_reasoning_probe.py's hand-written utility, read from reasoning that marks the
    true deviations, ranks the test split near its ceiling."""
    import importlib.util

    from prefbench.data import load_dataset
    from prefbench.demo_zoo.pretrain import annotated

    spec = importlib.util.spec_from_file_location("probe", REPO / "scripts" / "demo_reasoning_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    assert probe.pair_hits([3.0, 1.0, 1.0], [1, 2, 2]) == (2.0, 2)  # tied humans skipped
    assert probe.pair_hits([1.0, 1.0], [1, 2]) == (0.5, 1)  # tied scores count half
    marked = total = 0
    for item in load_dataset("demo", "test", with_images=False).items[:40]:
        caps, flaws = item.meta["captions"], item.meta["flaws"]
        m, n = probe.pair_hits([probe.utility_from_marks(annotated(c, item.prompt, f)) for c, f in zip(caps, flaws)],
                               item.ranks)
        marked, total = marked + m, total + n
    assert total > 300 and marked / total > 0.75
    assert probe.utility_from_marks("two blue (asked red) circles on a grey background, blurry") == -1.45


def test_pairwise_binding_probe_classifies_descriptions_and_runs(tiny_vlm_dir, capsys):
    """scripts/demo_pairwise_binding_probe.py: which image each 'Image k shows ...' is of; and the
    whole probe runs on a real (tiny, random) Qwen2.5-VL and prints its counts."""
    import importlib.util
    import re

    spec = importlib.util.spec_from_file_location(
        "binding", REPO / "scripts" / "demo_pairwise_binding_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    truth = ("two red circles on a grey background", "one blue square on a white background")
    said = ("<think>Image 1 shows one blue square (asked circles) on a white background, noisy. "
            "Image 2 shows two red circles on a grey background, clean and sharp.</think><answer>1</answer>")
    assert probe.classify(said, truth) == ["other", "other"]
    assert probe.classify("Image 1 shows two red circles on a grey background, blurry. Image 2 shows",
                          truth) == ["own", "neither"]
    user = "Which image has fewer defects? ... with 4 if Image 2 has fewer, or no if Image 1 has fewer."
    assert probe.answer_status("<think>x</think><answer>no</answer>", user, "<think>y</think><answer>no</answer>") == "right"
    assert probe.answer_status("<think>x</think><answer>4</answer>", user, "<think>y</think><answer>no</answer>") == "wrong"
    assert probe.answer_status("<think>x</think><answer>1</answer>", user, "<answer>no</answer>") == "other"
    assert probe.answer_status("<think>x, cut off", user, "<answer>no</answer>") == "other"
    assert probe.main([str(tiny_vlm_dir), "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert "pre-training question" in out and "pairwise_v1 question" in out
    counted = re.search(r"right (\d+)  wrong (\d+)  other (\d+)", out).groups()
    used = int(re.search(r"(\d+) two-image examples", out).group(1))
    assert sum(map(int, counted)) == used
