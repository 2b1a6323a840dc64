"""Rebuild every bundled demo checkpoint, then the committed demo results, from seeds.

    python -m prefbench.demo_zoo.recipe --work WORK_DIR [--stage all|models|install|results]

Each stage runs the documented commands below as subprocesses (printed as they run), so the
recipe is exactly what a user would type. ``install`` copies the finished models (weights,
configs, processor files and their training records; no optimizer checkpoints) into
``prefbench/demo_zoo/assets/``; ``results`` scores them into an empty ``results/`` and
regenerates the leaderboard, the miniature tables, the full baseline and the CI gate's baseline
(``results/ci-baseline.json``: the suite that ``.ci/run`` re-scores).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from prefbench.demo_zoo import ASSETS, BUNDLED_PREFIX
from prefbench.demo_zoo.suite import ROWS

PY = [sys.executable]
PB = [sys.executable, "-m", "prefbench"]

#: GRPO settings shared by both scorers (CPU-sized; the paper's are in its sec. 4)
GRPO = ["--dataset", "demo", "--split", "train", "--full", "--num-generations", "4", "--batch-size", "16",
        "--beta", "0.04", "--seed", "0", "--save-steps", "50", "--no-progress"]
#: reasoning budget per VLM scorer, the suite's (suite.ROWS): training uses the same budget as
#: scoring.
MAX_NEW_TOKENS = {scorer: str(opts["max_new_tokens"]) for _, scorer, opts in ROWS if "max_new_tokens" in opts}
COMPLETION = {"rating": MAX_NEW_TOKENS["expected_rating"], "pairwise": MAX_NEW_TOKENS["anchor_pairwise"]}
PRETRAIN_STEPS = "1800"
#: the vision-tower stage before it (pretrain.pretrain_vision): 1,200 steps x 32 images, ~7 min
VISION_STEPS = "1200"
GRPO_STEPS = {"rating": "1000", "pairwise": "800"}
#: learning rates (full fine-tuning of the 1.0M-parameter base); how the step counts were chosen is in
#: docs/demo-world.md, "History" (results on the full test split: results/demo_tables.md)
GRPO_LR = {"rating": "1e-4", "pairwise": "1e-4"}
#: the rating run samples at 1.2: at 1.0 only half of the base's rollout groups held two different ratings
RATING_TEMPERATURE = "1.2"
#: the GRPO runs use one thread each: the shipped scorers were trained that way (two runs side by
#: side on 2 cores), and retraining with these settings gave byte-identical weights (checked for the
#: shipped rating and pairwise scorers, and for the previous base's runs)
TRAIN_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


#: the SFT baselines (paper sec. 1: "SFT memorizes, RL generalizes", Chu et al. 2025): same base, same
#: train examples and prompts, same learning rate as the GRPO runs, and about as many example
#: presentations: GRPO rating saw 1,000 steps x 4 prompts (~2 epochs of the 2,003 train images), GRPO
#: pairwise 800 x 4 = 3,200 of the 3,552 train pairs (~0.9 epochs). Settings fixed before either was
#: scored; they train in about 3 (rating) and 5 (pairwise) minutes.
SFT = ["--dataset", "demo", "--split", "train", "--full", "--batch-size", "8", "--learning-rate", "1e-4",
       "--seed", "0", "--save-steps", "50", "--no-progress"]
SFT_EPOCHS = {"rating": "2", "pairwise": "1"}
#: bundled checkpoint folders (assets/<name>), in the order the recipe builds them
CHECKPOINTS = ("base", "rating", "pairwise", "clip", "sft-rating", "sft-pairwise")


def model_commands(work: Path) -> list[list[str]]:
    return [
        PY + ["-m", "prefbench.demo_zoo.pretrain", str(work / "base"), "--steps", PRETRAIN_STEPS,
              "--vision-steps", VISION_STEPS, "--seed", "0"],
        PB + ["train", "--task", "rating", "--model", str(work / "base"), "--output", str(work / "rating"),
              "--max-steps", GRPO_STEPS["rating"], "--learning-rate", GRPO_LR["rating"],
              "--max-completion-length", COMPLETION["rating"], "--temperature", RATING_TEMPERATURE, *GRPO],
        PB + ["train", "--task", "pairwise", "--model", str(work / "base"), "--output", str(work / "pairwise"),
              "--max-steps", GRPO_STEPS["pairwise"], "--learning-rate", GRPO_LR["pairwise"],
              "--max-completion-length", COMPLETION["pairwise"], *GRPO],
        PY + ["-m", "prefbench.demo_zoo.clip", str(work / "clip"), "--steps", "1500", "--seed", "0"],
        PB + ["train", "--task", "rating", "--method", "sft", "--model", str(work / "base"),
              "--output", str(work / "sft-rating"), "--epochs", SFT_EPOCHS["rating"], *SFT],
        PB + ["train", "--task", "pairwise", "--method", "sft", "--model", str(work / "base"),
              "--output", str(work / "sft-pairwise"), "--epochs", SFT_EPOCHS["pairwise"], *SFT],
    ]


def result_commands(results: Path) -> list[list[str]]:
    out = [PB + ["run", "--results", str(results), "--no-progress"]]  # the bundled suite on demo/test
    # the CI gate's baseline holds just the suite's runs (what .ci/run re-scores); written before
    # the other runs land in the same folder
    out.append(PB + ["check", "--baseline", str(results / "ci-baseline.json"), "--results", str(results),
                     "--write-baseline"])
    out.append(PB + ["run", "--scorer", "expected_rating", "--rollouts", "3",
                     "-S", f"max_new_tokens={MAX_NEW_TOKENS['expected_rating']}", "-S", "temperature=1.0",
                     "--results", str(results), "--no-progress"])
    sft = [("expected_rating", "sft-rating"), ("anchor_pairwise", "sft-pairwise")]
    for scorer, name in sft:  # the SFT baselines on test (not in the suite)
        out.append(PB + ["run", "--scorer", scorer, "--model", BUNDLED_PREFIX + name, "-S",
                         f"max_new_tokens={MAX_NEW_TOKENS[scorer]}", "--results", str(results), "--no-progress"])
    ood = [(s, None) for s in ("random", "demo_oracle", "zero_shot", "expected_rating", "anchor_pairwise", "clip")]
    for scorer, name in ood + sft:
        extra = ["-S", f"max_new_tokens={MAX_NEW_TOKENS[scorer]}"] if scorer in MAX_NEW_TOKENS else []
        if scorer == "clip":
            extra = ["-S", "preprocess=processor"]
        if name:
            extra = ["--model", BUNDLED_PREFIX + name, *extra]
        out.append(PB + ["run", "--scorer", scorer, "--split", "ood", *extra, "--results", str(results),
                         "--no-progress"])
    out.append(PY + ["-m", "prefbench.demo_zoo.tables", "--results", str(results)])
    out.append(PB + ["report", "--results", str(results)])
    out.append(PB + ["check", "--baseline", str(results / "baseline.json"), "--results", str(results),
                     "--write-baseline"])
    return out


KEEP = ("config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json",
        "processor_config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
        "special_tokens_map.json", "chat_template.jinja", "chat_template.json", "video_preprocessor_config.json",
        "added_tokens.json", "prefbench_train.json", "prefbench_pretrain.json")


def install(work: Path) -> None:
    for name in CHECKPOINTS:
        src, dest = work / name, ASSETS / name
        if not (src / "config.json").is_file():
            raise SystemExit(f"{src} is not a finished model (run --stage models first)")
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for f in KEEP:
            if (src / f).is_file():
                shutil.copy2(src / f, dest / f)
        size = sum(p.stat().st_size for p in dest.iterdir())
        print(f"installed {name}: {size / 1e6:.1f} MB -> {dest}")


def _is_train(cmd: list[str]) -> bool:
    return cmd[1:4] == ["-m", "prefbench", "train"]


def _shown(cmd: list[str]) -> str:
    env = "".join(f"{k}={v} " for k, v in TRAIN_ENV.items()) if _is_train(cmd) else ""
    return env + shlex.join(["python" if c == sys.executable else c for c in cmd])


def _run(cmd: list[str]) -> None:
    print("$", _shown(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, **TRAIN_ENV} if _is_train(cmd) else None)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m prefbench.demo_zoo.recipe", description=__doc__.splitlines()[0])
    p.add_argument("--work", default="demo-zoo-work", help="folder for training outputs (default: demo-zoo-work)")
    p.add_argument("--results", default="results")
    p.add_argument("--stage", choices=["all", "models", "install", "results"], default="all")
    p.add_argument("--print", action="store_true", help="print the commands instead of running them")
    a = p.parse_args(argv)
    work, results = Path(a.work), Path(a.results)
    cmds = []
    if a.stage in ("all", "models"):
        cmds += model_commands(work)
    if a.print:
        for c in cmds + (result_commands(results) if a.stage in ("all", "results") else []):
            print(_shown(c))
        return 0
    for c in cmds:
        _run(c)
    if a.stage in ("all", "install"):
        install(work)
    if a.stage in ("all", "results"):
        for c in result_commands(results):
            _run(c)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
