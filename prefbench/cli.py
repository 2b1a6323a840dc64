"""The ``prefbench`` command line: the parser and ``main``. The commands are in
:mod:`prefbench.commands`, each importing its implementation lazily, so ``prefbench --help`` and
``prefbench list`` never import torch, transformers, openai or fastapi."""

from __future__ import annotations

import argparse
import math
import sys

from prefbench import commands

EPILOG = """commands:
  prefbench run                                        every bundled demo scorer on the demo test split
  prefbench run --scorer random --dataset demo         score a split, store the run, print accuracy + CI
  prefbench evaluate --dataset imagereward --data-dir D --scores S.jsonl   score your own scores file
  prefbench rank --scorer clip --prompt "a red cube" A.png B.png C.png   best-of-N: images best first
  prefbench compare RUN_A RUN_B                        paired bootstrap of two runs on one split
  prefbench list                                       scorers (and their install extras), datasets
  prefbench train --task rating --model M --dataset demo --output OUT   GRPO-train a reasoning VLM scorer
  prefbench report                                     results/leaderboard.md + leaderboard.html
  prefbench check --baseline baseline.json             CI gate: exit 1 if a run is significantly worse
  prefbench bench-generators --scorer S --prompts F --images DIR   rank generators by mean reward (+ CIs)
  prefbench download genai_rank --data-dir D           fetch a dataset split's files from the hub, unpack, check
  prefbench doctor                                     Python, torch/CUDA, extras, optional envs, disk, memory
  prefbench serve --scorer clip --port 8000            a reward server (POST /v1/score); docs/serve.md
  prefbench reproduce --list                           the field's published tables; `reproduce NAME` runs one
  prefbench run ... --shard 0/3 ; prefbench merge SHARDS...   a run in shards (Slurm arrays), joined into one

Exit codes: 0 ok, 1 failure, 2 bad input (the message names the file and line)."""


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (a batch size, a count of resamples or rollouts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _port(text: str) -> int:
    """argparse type: a TCP port, 0..65535 (0: a free one); 70000 is refused, not wrapped to 4464."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535 (0: a free port), got {value}")
    return value


def _add_executor_options(p) -> None:
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="who scores: this process (local, default) or actors on a Ray cluster (ray extra; docs/scale.md)")
    p.add_argument("--ray-address", metavar="ADDR", help="--executor ray: the cluster (default: start a local one)")
    p.add_argument("--workers", type=_positive_int, default=2, help="--executor ray: actors, each with the model (default 2)")
    p.add_argument("--worker-gpus", type=float, default=0.0, help="--executor ray: GPUs per actor (default 0)")
    p.add_argument("--worker-cpus", type=float, default=1.0, help="--executor ray: CPUs per actor (default 1)")


def _add_outside_option(p) -> None:
    p.add_argument("--allow-outside-data-dir", action="store_true",
                   help="read image paths that resolve outside the data dir (absolute paths, '..', symlinks); "
                        "off by default: such an image is not read and gets status error. Recorded in run.json")


def _add_metric_options(p) -> None:
    p.add_argument("--convention", metavar="NAME",
                   help="override the split's official accuracy convention (built-in: imagereward, hpdv2, pickapic; "
                        "plugins too: see `prefbench list`)")
    p.add_argument("--tie-threshold", type=_non_negative_float, default=0.0,
                   help="pickapic: predict a tie when |p0 - p1| <= this (tune on validation_unique; default 0)")
    p.add_argument("--bootstrap-resamples", type=_positive_int, default=10_000, help="bootstrap resamples (default 10000)")


def build_parser() -> argparse.ArgumentParser:
    from prefbench import __version__

    parser = argparse.ArgumentParser(
        prog="prefbench", description="How well do reward models predict human preferences between generated images?",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"prefbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="scorers with their install extra and status; datasets and splits")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=commands.cmd_list)

    p = sub.add_parser("run", help="score a split with a scorer; resumable; writes a run folder")
    p.add_argument("--scorer", help="scorer name (see `prefbench list`); omitted: every bundled demo scorer "
                   "on the demo test split, printed as a leaderboard; a,b (and lists in --dataset, --split): "
                   "every combination, one run each")
    p.add_argument("--model", help="model path or id for scorers that load one")
    p.add_argument("--dataset", default="demo", help="dataset name, or names a,b (default: demo)")
    p.add_argument("--split", help="split, or splits a,b (default: the dataset's test split)")
    p.add_argument("--data-dir", help="folder holding the dataset's files")
    _add_outside_option(p)
    p.add_argument("--limit", type=_positive_int, help="score only the first N items")
    p.add_argument("--rollouts", type=_positive_int, help="Mean@k: reasoning rollouts per image (VLM scorers)")
    p.add_argument("--seed", type=int, default=0, help="scorer seed (default 0)")
    p.add_argument("--out", help="run folder (default: results/<dataset>-<split>/<scorer>-...-<config hash>)")
    p.add_argument("--results", default="results", help="root for default run folders (default: results)")
    p.add_argument("-S", action="append", default=[], metavar="KEY=VALUE",
                   help="scorer option; repeatable (values parse as JSON when they can)")
    p.add_argument("--batch-size", type=_positive_int, help="items per scorer batch (default: the scorer's)")
    p.add_argument("--engine", "--backend", dest="engine", metavar="NAME",
                   help="VLM scorers: the engine that runs the model: transformers (default, loads --model), "
                        "openai (an OpenAI-compatible server such as vLLM serving --model NAME), vllm "
                        "(in-process vLLM, in the vLLM env) or a plugin engine; its options go in -S "
                        "(see `prefbench list`). --backend is the old name")
    p.add_argument("--base-url", action="append", default=[], metavar="URL",
                   help="--engine openai: server URL such as http://127.0.0.1:8000/v1; repeat to spread requests")
    p.add_argument("--api-key-env", metavar="VAR",
                   help="--engine openai: environment variable holding the API key (default OPENAI_API_KEY)")
    p.add_argument("--wait", action="store_true",
                   help="if another prefbench process is writing the same run folder, wait for it (default: exit 2)")
    p.add_argument("--shard", metavar="I/N",
                   help="score only shard I (from 0) of a deterministic N-way partition of the items, into a shard "
                        "folder of its own; `prefbench merge` joins the N shards into one run (docs/scale.md)")
    _add_executor_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    _add_metric_options(p)
    p.set_defaults(func=commands.cmd_run)

    p = sub.add_parser("rank", help="rank images for one prompt, best first (best-of-N), with scores and reasoning")
    p.add_argument("--scorer", required=True, help="scorer name (see `prefbench list`)")
    p.add_argument("--model", help="model path, id or alias; omitted: the scorer's bundled demo checkpoint, if any")
    p.add_argument("--prompt", required=True, help="the text prompt the images were generated for")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, WebP, ...)")
    p.add_argument("--engine", metavar="NAME", help="VLM scorers: transformers (default), openai, vllm, or a plugin")
    p.add_argument("--base-url", action="append", default=[], metavar="URL", help="--engine openai: server URL")
    p.add_argument("-S", action="append", default=[], metavar="KEY=VALUE", help="scorer or engine option; repeatable")
    p.add_argument("--rollouts", type=_positive_int, help="Mean@k: reasoning rollouts per image (VLM scorers)")
    p.add_argument("--mode", default="anchor", choices=["anchor", "round_robin"],
                   help="pairwise scorers: anchor (N-1 comparisons with a seeded anchor; default) or round_robin "
                        "(every pair; score = win rate)")
    p.add_argument("--seed", type=int, default=0, help="scorer seed (default 0)")
    p.add_argument("--no-traces", dest="traces", action="store_false", help="do not print reasoning traces")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.set_defaults(func=commands.cmd_rank)

    p = sub.add_parser("evaluate", help="official accuracy + CI of your own per-image scores (JSONL)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split")
    p.add_argument("--data-dir", help="folder holding the annotation file (images are not needed)")
    p.add_argument("--scores", help='JSONL: {"prompt_id": ..., "image_index": i, "score": x} per image '
                   '(optional "elements": {element: p})')
    p.add_argument("--verdicts", help='JSONL of a judge\'s answers: {"prompt_id": ..., "verdict": text} (genai_judge) '
                   'or with "order": forward/reverse (mmrb2); see docs/datasets.md')
    p.add_argument("--judge-outputs", metavar="FILE",
                   help='JSONL of raw judge texts: {"prompt_id", "image_a", "image_b", "order", "text"} (pairwise) or '
                        '{"prompt_id", "image_index", "text"} (pointwise), parsed with --protocol; see docs/judges.md')
    p.add_argument("--protocol", metavar="NAME", help="--judge-outputs: the judge protocol that parses the texts "
                   "(see `prefbench list`)")
    p.add_argument("--on-parse-failure", choices=["official", "wrong", "exclude", "neutral"], default="official",
                   help="--judge-outputs: what a text that does not parse counts as (default: the protocol's official "
                        "policy); always counted and reported")
    p.add_argument("--read-out", choices=["hard", "soft"], default="hard",
                   help="--judge-outputs: hard (parse each text; default) or soft (each row's answer_probs / "
                        "answer_logprobs at the protocol's answer position)")
    p.add_argument("--parsed-out", metavar="FILE", help="--judge-outputs: write one JSONL row per judgement (what was "
                   "read, parse failure or not, the policy applied, what it counted as)")
    p.add_argument("--json", action="store_true")
    _add_metric_options(p)
    p.set_defaults(func=commands.cmd_evaluate)

    p = sub.add_parser("compare", help="paired cluster bootstrap of two runs on the same split")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--bootstrap-resamples", type=_positive_int, default=10_000)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_compare)

    p = sub.add_parser("train", help="GRPO-train a reasoning VLM scorer (TRL; Unsloth on a CUDA GPU), "
                                     "or --method sft: the SFT baseline")
    p.add_argument("--task", required=True, choices=["rating", "pairwise"],
                   help="rating: one image -> a rating; pairwise: anchor vs candidate -> 1/0")
    p.add_argument("--method", default="grpo", choices=["grpo", "sft"],
                   help="grpo: the paper's reasoning RL (default); sft: supervised baseline, cross-entropy on the "
                        "answer after an empty <think></think> (TRL SFTTrainer, transformers backend)")
    p.add_argument("--model", required=True, help="base VLM folder or id (Qwen2.5-VL-style, with its processor)")
    p.add_argument("--dataset", default="demo",
                   help="dataset to train on (default: demo): the rating task reads one with per-image ratings, "
                        "the pairwise task any with ranks; see `prefbench list` and docs/training.md (a wrong pick "
                        "is refused with the datasets that fit)")
    p.add_argument("--split", default="train", help="split to train on (default: train)")
    p.add_argument("--data-dir", help="folder (or JSONL file) holding the dataset's files")
    _add_outside_option(p)
    p.add_argument("--fraction", type=float, default=1.0, help="seeded random fraction of the items (paper: 0.25 of HPDv2)")
    p.add_argument("--seed", type=int, default=0, help="seed for the subset, pair order and training (default 0)")
    p.add_argument("--limit", type=_positive_int, help="keep only the first N examples")
    p.add_argument("--output", required=True, help="folder for the trained model, checkpoints and prefbench_train.json")
    p.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (default: --epochs over the data)")
    p.add_argument("--epochs", type=float, default=1.0, help="epochs when --max-steps is not given (default 1)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lora", dest="lora", action="store_true", default=True, help="LoRA on the language layers (default)")
    g.add_argument("--full", dest="lora", action="store_false", help="full fine-tuning")
    p.add_argument("--lora-r", type=_positive_int, default=16, help="LoRA rank (default 16)")
    p.add_argument("--rating-scale", help="rating task: LOW-HIGH (default: the dataset's own scale where it has one, "
                                          "such as 1-7 for imagereward; else 1-5)")
    p.add_argument("--max-pixels", type=_positive_int,
                   help="cap on image pixels for the processor; saved with OUT, so scoring uses the same")
    p.add_argument("--num-generations", type=_positive_int, default=4, help="rollouts per prompt, GRPO's group (default 4)")
    p.add_argument("--max-completion-length", type=_positive_int, default=256, help="reasoning + answer tokens (default 256)")
    p.add_argument("--learning-rate", type=float, help="default 1e-5 with LoRA, 1e-6 full fine-tuning")
    p.add_argument("--beta", type=float, default=0.04, help="KL coefficient (default 0.04)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the rollouts (default 1.0)")
    p.add_argument("--batch-size", type=_positive_int,
                   help="completions per device step (default: --num-generations; SFT: examples, default 8)")
    p.add_argument("--grad-accum", type=_positive_int, default=1, help="gradient accumulation steps (default 1)")
    p.add_argument("--reward-weight", action="append", default=[], metavar="NAME=W",
                   help="reward weight: format, exact, approx (rating only); default 1 each; repeatable")
    p.add_argument("--save-steps", type=_positive_int, default=50, help="checkpoint every N steps (default 50)")
    p.add_argument("--resume", action="store_true", help="continue OUT's run from its last checkpoint")
    p.add_argument("--backend", default="auto", choices=["auto", "transformers", "unsloth"],
                   help="auto: Unsloth on a CUDA GPU when installed, else transformers + PEFT")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("-T", action="append", default=[], metavar="KEY=VALUE",
                   help="any trl.GRPOConfig field (trl.SFTConfig with --method sft), e.g. -T top_p=0.9 "
                        "(values parse as JSON when they can)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the per-step reward/KL lines still go to stderr)")
    p.add_argument("--json", action="store_true", help="print the training record (without curves) as JSON")
    p.set_defaults(func=commands.cmd_train)

    p = sub.add_parser("report", help="write leaderboard.md and a self-contained leaderboard.html from the runs")
    p.add_argument("--results", default="results", help="folder searched for run.json files (default: results)")
    p.add_argument("--out", help="output folder (default: the --results folder)")
    p.add_argument("--items", type=int, default=30, help="items per split in the HTML item browser (default 30; 0: none)")
    p.add_argument("--bootstrap-resamples", type=_positive_int, default=10_000, help="paired bootstrap resamples (default 10000)")
    p.set_defaults(func=commands.cmd_report)

    p = sub.add_parser("check", help="regression gate: fail (exit 1) when a run is significantly worse than its baseline")
    p.add_argument("--baseline", required=True, metavar="FILE", help="baseline JSON (format: docs/report.md, 'Baseline file')")
    p.add_argument("--results", default="results", help="folder searched for run.json files (default: results)")
    p.add_argument("--alpha", type=float, default=0.05, help="one-sided significance level (default 0.05)")
    p.add_argument("--write-baseline", action="store_true", help="write FILE from the current runs instead of checking")
    p.add_argument("--bootstrap-resamples", type=_positive_int, default=10_000, help="paired bootstrap resamples (default 10000)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=commands.cmd_check)

    p = sub.add_parser("bench-generators", help="rank text-to-image generators: mean score per generator over "
                                                "prompts, cluster-bootstrap CIs, paired comparisons, rank stability")
    p.add_argument("--scorer", required=True, help="scorer name (see `prefbench list`)")
    p.add_argument("--model", help="model path or id for scorers that load one")
    p.add_argument("--engine", metavar="NAME", help="VLM scorers: the engine (as `prefbench run --engine`)")
    p.add_argument("-S", action="append", default=[], metavar="KEY=VALUE",
                   help="scorer option; repeatable (values parse as JSON when they can)")
    p.add_argument("--prompts", required=True, metavar="FILE",
                   help='prompts: JSON list of {"id", "prompt"} (ImageReward\'s benchmark-prompts.json), JSONL with '
                        '"prompt_id"/"id" and "prompt", or text, one prompt per line (id = 0-based line number)')
    p.add_argument("--images", required=True, metavar="DIR", help="DIR/<generator>/<prompt_id>_<k>.png (or .jpg, .webp)")
    p.add_argument("--results", default="results",
                   help="root for default run folders (default: results; runs go to <results>/generators-<FILE stem>/)")
    p.add_argument("--out", help="run folder (default: <results>/generators-<FILE stem>/<scorer>-...-<config hash>)")
    p.add_argument("--seed", type=int, default=0, help="scorer seed and bootstrap seed (default 0)")
    p.add_argument("--bootstrap-resamples", type=_positive_int, default=10_000,
                   help="prompt resamples for CIs, comparisons and rank stability (default 10000)")
    p.add_argument("--batch-size", type=_positive_int, help="prompts x generators per scorer call (default: the scorer's)")
    p.add_argument("--wait", action="store_true",
                   help="if another prefbench process is writing the same run folder, wait for it (default: exit 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--mode", default="anchor", choices=["anchor", "round_robin"],
                   help="pairwise scorers, which compare every generator's images of a prompt together: anchor (one "
                        "shared seeded anchor per prompt; default) or round_robin (every pair; score = win rate)")
    _add_executor_options(p)
    p.set_defaults(func=commands.cmd_bench_generators)

    p = sub.add_parser("doctor", help="what this machine has: Python, torch/CUDA, install extras, optional envs "
                                      "(reference, vLLM), Chromium, free disk and memory")
    p.add_argument("--import", dest="import_torch", action="store_true",
                   help="also import torch to report CUDA and GPUs (slower)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=commands.cmd_doctor)

    p = sub.add_parser("serve", help="serve a scorer as a reward over HTTP (POST /v1/score), micro-batching "
                                     "concurrent requests; see docs/serve.md")
    p.add_argument("--scorer", required=True, help="scorer name (see `prefbench list`)")
    p.add_argument("--model", help="model path, id or alias (default: the scorer's bundled demo checkpoint, if any)")
    p.add_argument("--engine", metavar="NAME", help="VLM scorers: the engine (transformers, openai, vllm); "
                   "its options go in -S")
    p.add_argument("-S", action="append", default=[], metavar="KEY=VALUE",
                   help="scorer option; repeatable (values parse as JSON when they can)")
    p.add_argument("--seed", type=int, default=0, help="scorer seed (default 0)")
    p.add_argument("--mode", choices=["anchor", "round_robin"],
                   help="default scoring mode of pairwise scorers (default anchor); a request may set its own")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0: a free port, printed on startup)")
    p.add_argument("--token-env", metavar="NAME",
                   help="environment variable holding a bearer token that every request but /health must send "
                        "(Authorization: Bearer ...); the token is never printed or logged")
    p.add_argument("--max-batch-size", type=_positive_int, default=32,
                   help="images per micro-batch: concurrent requests are scored together up to this many "
                        "(default 32; 1: no batching)")
    p.add_argument("--max-wait-ms", type=_non_negative_float, default=10.0,
                   help="how long the oldest request waits for more to fill its batch (default 10)")
    p.add_argument("--batch-size", type=_positive_int, help="items per scorer call inside a batch (default: the scorer's)")
    p.add_argument("--timeout", type=_non_negative_float, default=120.0,
                   help="seconds a request may wait and be scored before it gets 504 (default 120)")
    p.add_argument("--max-body-mb", type=_non_negative_float, default=64.0, help="largest request body, MiB (default 64)")
    p.add_argument("--max-images", type=_positive_int, default=64, help="most images in one request (default 64)")
    p.add_argument("--max-pixels", type=_positive_int, default=4096 * 4096,
                   help="largest image, width x height, checked from its header before decoding (default 4096*4096)")
    p.add_argument("--max-queue", type=_positive_int, default=1024,
                   help="requests waiting past this many get 503 (default 1024)")
    p.add_argument("--max-request-pixels", type=_positive_int, default=64 * 1024 * 1024,
                   help="most pixels of all images of one request, from their headers (default 64*1024*1024)")
    p.add_argument("--max-comparisons", type=_positive_int, default=512,
                   help="pairwise scorers: most comparisons one request may ask for (anchor: n-1 per item, "
                        "round_robin: n(n-1)/2; default 512)")
    p.add_argument("--receive-timeout", "--body-timeout", dest="body_timeout", type=_positive_float, default=60.0,
                   help="seconds a request, headers and body, may take to arrive (from its first byte; a new "
                        "connection's from its opening) before 408 and a closed connection (default 60)")
    p.add_argument("--max-connections", type=_positive_int, default=1024,
                   help="open connections past this many get 503 at once (uvicorn's limit_concurrency; slow "
                        "clients cannot pile up without bound; default 1024)")
    p.add_argument("--shutdown-grace", type=_non_negative_float, default=10.0,
                   help="on SIGTERM: seconds the batch being scored may take to finish; waiting requests get 503 "
                        "at once (default 10)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level; info logs each request line (default info)")
    p.set_defaults(func=commands.cmd_serve)

    p = sub.add_parser("download", help="fetch a dataset split's files from the hub (huggingface_hub), unpack its "
                                        "archives, write DIR/prefbench_download.json; offline: says what to put where")
    p.add_argument("dataset", metavar="DATASET", nargs="?", help="a dataset with a download manifest (see docs/datasets.md)")
    p.add_argument("--weights", metavar="NAME", help="instead of a dataset: a pinned model's files (ImageReward-v1.0, "
                   "HPSv2.1, HPSv2, PickScore_v1, CLIP, Aesthetic), checked, into $PREFBENCH_CACHE/models/NAME; "
                   "then --model NAME (docs/scorers.md)")
    p.add_argument("--split", help="split (default: the dataset's default split)")
    p.add_argument("--data-dir", help="folder the files go to (created if needed)")
    p.add_argument("--revision", help="branch, tag or commit of the repository (default: main)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=commands.cmd_download)

    p = sub.add_parser("reproduce", help="the field's published tables as acceptance tests: run their rows, print "
                                         "published vs measured (95%% CI) with a verdict per row")
    p.add_argument("tables", nargs="*", metavar="TABLE", help="a shipped table's name (see --list) or a table file")
    p.add_argument("--list", action="store_true", help="list the shipped tables with their sources")
    p.add_argument("--all", action="store_true", help="every shipped table")
    p.add_argument("--only", metavar="ROW", help="one row of the table, by name")
    p.add_argument("--model", help="with --only: run that row on this model (a folder or hub id) instead")
    p.add_argument("--data-dir", help="the table's dataset folder (as prefbench run --data-dir)")
    p.add_argument("--results", default="results", help="runs and verdicts go here (default: results)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a row that ran did not reproduce")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    p.set_defaults(func=commands.cmd_reproduce)

    p = sub.add_parser("merge", help="join the shard folders of `prefbench run --shard I/N` into one run folder, "
                                     "checking one config hash and that every item is in exactly one shard")
    p.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="the N shard folders")
    p.add_argument("--into", metavar="RUN", help="the merged run folder (default: where a single-process run of the "
                                                 "same configuration goes, under --results)")
    p.add_argument("--results", default="results", help="root for the default run folder (default: results)")
    p.add_argument("--data-dir", help="the dataset's folder, if not where the shards read it")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.set_defaults(func=commands.cmd_merge)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from prefbench.errors import PrefbenchError

    try:
        return args.func(args)
    except PrefbenchError as exc:
        from prefbench.provenance import redact_url

        print(f"prefbench: error: {redact_url(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a read-only folder, a full disk, a permission: the environment, not a bug
        where = f"{exc.filename}: " if exc.filename else ""
        hint = (" (every image scored so far is stored: rerun the same command to resume)"
                if args.command in ("run", "bench-generators") else "")
        print(f"prefbench: error: {where}{exc.strerror or exc}{hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
