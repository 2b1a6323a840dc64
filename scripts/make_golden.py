#!/usr/bin/env python
"""Run the benchmarks' official evaluation code on prefbench's golden inputs; store the numbers.

prefbench keeps no copy of another project's code. Its parity tests compare against numbers that
this script produces from *your own* checkout of each official repository:

    python scripts/make_golden.py --source imagereward=~/src/ImageReward --source hpsv2=~/src/HPSv2 ...

For each source it builds the seeded inputs of ``tests/fixtures/golden_inputs.py``, runs the
official functions on them (lifted from the checkout's files with ``ast``, because those modules
import model code the evaluation functions do not use, or run as a script where the official step
is a script), and writes ``tests/fixtures/golden/<source>.json``: the repository, the commit
(``git rev-parse HEAD`` of the checkout, or ``--commit NAME=SHA``), each file's sha256, and per
case the inputs' digest and the official outputs. Numbers only: no code, no prose.

The sources and the files read (the commits the committed goldens came from are in each JSON):

    imagereward  THUDM/ImageReward         test.py (acc)
    hpsv2        tgxs002/HPSv2             hpsv2/evaluation.py (evaluate_rank, evaluate_IR: their ranking
                                           and scoring statements), hpsv2/src/training/train.py
                                           (inversion_score, calc_ImageReward); an installed hpsv2
                                           package's parent folder works too
    pickscore    yuvalkirstain/PickScore   trainer/scripts/eval_preference_predictor.py
    videoalign   KwaiVGI/VideoAlign        calc_accuracy.py
    genai_bench  TIGER-AI-Lab/GenAI-Bench  inference.py (parse_response; needs the `regex` package)
    mmrb2        facebookresearch/MMRB2    evaluate/compute_scores/compute_accuracy.py
    t2v_metrics  linzhiqiu/t2v_metrics     genai_image_ranking.py, dataset.py (GenAIBench_Ranking)
    evalmuse     DY-Evalab/EvalMuse        utils.py, eval.py, process/process_train.py (run as a script)

Needs numpy, scipy and torch (prefbench's `vlm` extra has them).
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fixtures.golden_inputs import CASES, build, digest  # noqa: E402

OUT = ROOT / "tests" / "fixtures" / "golden"

SOURCES = {
    "imagereward": ("THUDM/ImageReward", ["test.py"]),
    "hpsv2": ("tgxs002/HPSv2", ["hpsv2/evaluation.py", "hpsv2/src/training/train.py"]),
    "pickscore": ("yuvalkirstain/PickScore", ["trainer/scripts/eval_preference_predictor.py"]),
    "videoalign": ("KwaiVGI/VideoAlign", ["calc_accuracy.py"]),
    "genai_bench": ("TIGER-AI-Lab/GenAI-Bench", ["inference.py"]),
    "mmrb2": ("facebookresearch/MMRB2", ["evaluate/compute_scores/compute_accuracy.py"]),
    "t2v_metrics": ("linzhiqiu/t2v_metrics", ["genai_image_ranking.py", "dataset.py"]),
    "evalmuse": ("DY-Evalab/EvalMuse", ["utils.py", "eval.py", "process/process_train.py"]),
}


# -- running the official code ---------------------------------------------------------------------

def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def lift(path: Path, names: list[str], **namespace) -> SimpleNamespace:
    """The named top-level functions and classes of ``path``, executed unchanged in a namespace
    holding what they use (their module's own imports pull in model code they never call)."""
    keep = [n for n in _tree(path).body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name in names]
    missing = set(names) - {n.name for n in keep}
    if missing:
        raise SystemExit(f"{path}: no top-level {', '.join(sorted(missing))}; is this the right checkout?")
    module = types.ModuleType(f"official_{path.stem}")
    module.__dict__.update(namespace)
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), module.__dict__)  # noqa: S102
    return SimpleNamespace(**{n: module.__dict__[n] for n in names})


def _function(path: Path, name: str) -> ast.FunctionDef:
    for node in _tree(path).body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise SystemExit(f"{path}: no function {name}")


def _targets(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.Assign):
        return {n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        return {node.target.id}
    return set()


def run_statements(path: Path, function: str, names: list[str], namespace: dict) -> dict:
    """Execute, in source order, the assignments inside ``function`` (at any depth) to ``names``:
    the official steps that sit inside a function which also loads models and data."""
    fn = _function(path, function)
    picked = [n for n in ast.walk(fn) if isinstance(n, (ast.Assign, ast.AugAssign)) and _targets(n) & set(names)]
    picked.sort(key=lambda n: (n.lineno, n.col_offset))
    if {t for n in picked for t in _targets(n)} < set(names):
        raise SystemExit(f"{path}:{function}: not every one of {names} is assigned")
    exec(compile(ast.Module(body=picked, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace


def run_body_slice(path: Path, function: str, first: str, last: str, namespace: dict) -> dict:
    """Execute the top-level statements of ``function`` from the one assigning ``first`` through
    the one assigning ``last`` (loops between them included)."""
    body = _function(path, function).body
    start = next(k for k, n in enumerate(body) if first in _targets(n))
    stop = next(k for k, n in enumerate(body) if last in _targets(n) and k >= start)
    exec(compile(ast.Module(body=body[start:stop + 1], type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace


# -- one function per source: inputs -> official outputs ------------------------------------------------

def imagereward(src: Path, inputs: dict) -> dict:
    acc = lift(src / "test.py", ["acc"]).acc
    return {"accuracy": acc([{"ranking": r} for r in inputs["ranks"]], [{"rewards": s} for s in inputs["scores"]])}


def hpsv2(src: Path, inputs: dict, case: str) -> dict:
    import torch

    train = lift(src / "hpsv2/src/training/train.py", ["inversion_score", "calc_ImageReward"])
    ns = {"torch": torch, "inversion_score": train.inversion_score, "calc_ImageReward": train.calc_ImageReward,
          "paired_logits_list": [torch.tensor(s, dtype=torch.float64) for s in inputs["scores"]],
          "num_images": [len(s) for s in inputs["scores"]], "labels": [torch.tensor(r) for r in inputs["ranks"]]}
    function = "evaluate_rank" if case.startswith("hpdv2") else "evaluate_IR"
    run_statements(src / "hpsv2/evaluation.py", function, ["score", "predicted", "hps_ranking"], ns)
    return {"accuracy": float(ns["score"]) / len(inputs["ranks"])}  # score / total, total = len(dataset)


def pickscore(src: Path, inputs: dict, case: str) -> dict:
    import numpy as np
    import torch

    path = src / "trainer/scripts/eval_preference_predictor.py"
    pk = lift(path, ["get_label", "get_pred", "calc_score", "calc_acc"])

    def probs(scores):  # infer_example's read-out, on the given logits instead of a CLIP model's
        out = []
        for s in scores:
            ns = run_statements(path, "infer_example", ["probs"], {"torch": torch,
                                                                    "scores": torch.tensor(s, dtype=torch.float64)})
            out.append(tuple(ns["probs"].cpu().tolist()))
        return out

    def accuracy(part, threshold):
        return pk.calc_acc(probs(part["scores"]), [{"label_0": v} for v in part["label_0"]], threshold)

    if case == "fixed_thresholds":
        return {f"t={t}": accuracy(inputs, t) for t in inputs["thresholds"]}
    thresholds = run_statements(path, "main", ["thresholds"], {})["thresholds"]
    val = [accuracy(inputs["validation"], t) for t in thresholds]
    best = thresholds[int(np.argmax(val))]  # main(): best_threshold = np.argmax(validation results)
    return {"grid": list(thresholds), "threshold": best, "validation_accuracy": max(val),
            "test_accuracy": accuracy(inputs["test"], best)}


def videoalign(src: Path, inputs: dict) -> dict:
    va = lift(src / "calc_accuracy.py",
              ["suff_stats", "calc_acc", "calc_accuracy_with_ties", "calc_accuracy_without_ties"])
    return {"tau": va.calc_accuracy_with_ties(inputs["h"], inputs["m"]),
            "diff": va.calc_accuracy_without_ties(inputs["h"], inputs["m"])}


def genai_bench(src: Path, inputs: dict) -> dict:
    import regex  # inference.py: `import regex as re`

    gb = lift(src / "inference.py", ["parse_response"], re=regex)
    parsed = [gb.parse_response(r, v) for r, v in zip(inputs["responses"], inputs["votes"], strict=True)]
    return {"accuracy": sum(bool(c) for _, c in parsed) / len(parsed),
            "n_unparsed": sum(p is None for p, _ in parsed)}


def mmrb2(src: Path, inputs: dict) -> dict:
    from dataclasses import dataclass

    mm = lift(src / "evaluate/compute_scores/compute_accuracy.py",
              ["TaskResult", "flip_judgement", "compute_task_accuracy"], dataclass=dataclass, Dict=dict, List=list)
    bench = {"pairs": [{"id": str(k), "chosen": c} for k, c in enumerate(inputs["chosen"])]}
    predictions = {pid: {order: [{"judgement": j}] for order, j in pred.items()}
                   for pid, pred in inputs["predictions"].items()}
    res = mm.compute_task_accuracy(predictions, bench, "t2i")
    return {"accuracy": res.accuracy, "missing_pairs": res.missing_pairs, "total_evaluated": res.total_evaluated,
            "total_correct": res.total_correct}


def t2v_metrics(src: Path, inputs: dict) -> dict:
    import os

    import numpy as np
    import torch

    ds = lift(src / "dataset.py", ["GenAIBench_Ranking"], os=os, json=json, np=np, Dataset=object)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "GenAI-Image-Ranking-800"
        (root / "DALLE_3").mkdir(parents=True)
        rating = {str(p): {"id": str(p), "prompt": f"prompt {p}",
                           "models": {"DALLE_3": {str(k + 1): r for k, r in enumerate(per_image)}}}
                  for p, per_image in enumerate(inputs["ratings"])}
        (root / "human_rating.json").write_text(json.dumps(rating))
        dataset = ds.GenAIBench_Ranking(gen_model="DALLE_3", root_dir=tmp, download=False)
    rank = lift(src / "genai_image_ranking.py",
                ["rerank_human_scores", "compute_top1_acc_skill", "compute_top1_acc_group_skill"], np=np, torch=torch)
    idx = dataset.images_to_prompt_idx
    ns = {"torch": torch, "np": np, "dataset": dataset, "prompt_num": len(idx), "images_to_prompt_idx": idx,
          "tags": {"basic": idx, "advanced": idx, "all": idx},
          "scores": torch.tensor([s for row in inputs["scores"] for s in row], dtype=torch.float64),
          **vars(rank)}
    path = src / "genai_image_ranking.py"
    run_body_slice(path, "main", "scores_per_prompt", "human_scores", ns)
    run_statements(path, "main", ["top1_acc_rerank", "top1_acc_rerank_group"], ns)
    human = ns["human_scores"]
    return {"genai_rank_top1": ns["top1_acc_rerank"]["all"], "genai_rank_top1_by3": ns["top1_acc_rerank_group"]["all"],
            "genai_rank_best9": float(np.mean(human["rerank_by_9"])),
            "genai_rank_best3": float(np.mean(human["rerank_by_3"])),
            "random": float(np.mean(human["random"])), "oracle_by9": float(np.mean(human["human_oracle_by9"])),
            "oracle_by3": float(np.mean(human["human_oracle_by3"]))}


def evalmuse(src: Path, inputs: dict) -> dict:
    import numpy as np
    import scipy
    import scipy.stats
    import torch
    from scipy.optimize import curve_fit

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "dataset").mkdir()
        (Path(tmp) / "dataset" / "train_list.json").write_text(json.dumps(inputs["rows"]))
        # the authors' converter averages the annotators' lists (it reads and writes dataset/ in its cwd)
        subprocess.run([sys.executable, str(src / "process" / "process_train.py")], cwd=tmp, check=True)
        rows = json.loads((Path(tmp) / "dataset" / "train.json").read_text())

    def mean_squared_error(y, p):  # scikit-learn's, for the RMSE compute_metrics also returns (not compared)
        return float(np.mean((np.asarray(y) - np.asarray(p)) ** 2))

    um = lift(src / "utils.py", ["logistic_func", "compute_metrics"], np=np, scipy=scipy, curve_fit=curve_fit,
              mean_squared_error=mean_squared_error)
    ev = lift(src / "eval.py", ["binarize", "calculate_accuracy"], torch=torch)
    y = [r["total_score"] for r in rows]
    srcc, _, plcc, _ = um.compute_metrics(np.asarray(inputs["scores"]), np.asarray(y))
    labels = [v for r in rows for v in r["element_score"].values()]
    preds = [p[name] for r, p in zip(rows, inputs["element_preds"], strict=True) for name in r["element_score"]]
    acc, _ = ev.calculate_accuracy(labels, preds)
    return {"srcc": float(srcc), "plcc": float(plcc), "element_accuracy": float(acc),
            "final": float(plcc / 4 + srcc / 4 + acc / 2),  # calculate_metrics.py's final score
            "averaged_total_scores": y, "averaged_element_labels": labels}


RUNNERS = {"imagereward": imagereward, "hpsv2": hpsv2, "pickscore": pickscore, "videoalign": videoalign,
           "genai_bench": genai_bench, "mmrb2": mmrb2, "t2v_metrics": t2v_metrics, "evalmuse": evalmuse}


# -- the golden file --------------------------------------------------------------------------------

def _commit(path: Path, given: str | None) -> str:
    if given:
        return given
    proc = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown (not a git checkout; pass --commit)"


def make(source: str, path: Path, commit: str | None, repository: str | None = None) -> dict:
    repo, files = SOURCES[source]
    repo = repository or repo
    for f in files:
        if not (path / f).is_file():
            raise SystemExit(f"{source}: {path / f} not found; give a checkout of {repo}")
    runner = RUNNERS[source]
    cases = {}
    for case in CASES[source]:
        inputs = build(source, case)
        frozen = copy.deepcopy(inputs)
        takes_case = runner.__code__.co_argcount == 3
        expected = runner(path, inputs, case) if takes_case else runner(path, inputs)
        if inputs != frozen:
            raise SystemExit(f"{source}/{case}: the official code changed its inputs")
        cases[case] = {"inputs_sha256": digest(frozen), "expected": expected}
        print(f"{source}/{case}: {json.dumps(expected)[:160]}")
    return {"source": source, "repository": repo, "commit": _commit(path, commit),
            "files": {f: hashlib.sha256((path / f).read_bytes()).hexdigest() for f in files},
            "generated_by": "scripts/make_golden.py", "cases": cases}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", action="append", default=[], metavar="NAME=PATH",
                    help=f"a checkout of an official repository; NAME is one of {', '.join(SOURCES)}")
    ap.add_argument("--commit", action="append", default=[], metavar="NAME=SHA",
                    help="the commit of a source that is not a git checkout (an unpacked package)")
    ap.add_argument("--repository", action="append", default=[], metavar="NAME=OWNER/REPO",
                    help="record another repository for a source (a fork holding the same files)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"where the JSON files go (default {OUT})")
    args = ap.parse_args(argv)
    commits = dict(c.split("=", 1) for c in args.commit)
    repositories = dict(c.split("=", 1) for c in args.repository)
    if not args.source:
        ap.error("give at least one --source NAME=PATH")
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.source:
        name, _, raw = spec.partition("=")
        if name not in SOURCES or not raw:
            ap.error(f"--source {spec!r}: expected NAME=PATH with NAME in {', '.join(SOURCES)}")
        golden = make(name, Path(raw).expanduser().resolve(), commits.get(name), repositories.get(name))
        (args.out / f"{name}.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.out / f'{name}.json'} ({golden['repository']} @ {golden['commit'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
