"""The ``prefbench`` command line: the parser and ``main``. The commands are in
:mod:`prefbench.commands`, each importing its implementation lazily, so ``prefbench --help`` and
``prefbench list`` never import torch, transformers, openai or fastapi."""

from __future__ import annotations

import argparse
import sys

from prefbench import commands
from prefbench.config_fields import add_options, cli_fields, positive_int

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


#: ``prefbench run``'s flags, in --help order (the fields of RunConfig)
RUN_FLAGS = ["scorer", "model", "dataset", "split", "data_dir", "allow_outside_data_dir", "limit", "rollouts", "seed",
             "out", "results_root", "params", "batch_size", "engine", "base_urls", "api_key_env", "wait", "shard",
             "executor", "ray_address", "workers", "worker_gpus", "worker_cpus", "progress", "convention",
             "tie_threshold", "bootstrap_resamples"]


def _train(sub) -> None:
    from prefbench.training.config import TrainConfig

    p = sub.add_parser("train", help="GRPO-train a reasoning VLM scorer (TRL; Unsloth on a CUDA GPU), "
                                     "or --method sft: the SFT baseline")
    add_options(p, TrainConfig, ["task", "method", "model", "dataset", "split", "data_dir", "allow_outside_data_dir",
                                 "fraction", "seed", "limit", "output", "max_steps", "epochs"])
    g = p.add_mutually_exclusive_group()
    g.add_argument("--lora", dest="lora", action="store_true", default=True, help="LoRA on the language layers (default)")
    g.add_argument("--full", dest="lora", action="store_false", help="full fine-tuning")
    add_options(p, TrainConfig, ["lora_r"])
    p.add_argument("--rating-scale", help="rating task: LOW-HIGH (default: the dataset's own scale where it has one, "
                                          "such as 1-7 for imagereward; else 1-5)")
    add_options(p, TrainConfig, ["max_pixels", "num_generations", "max_completion_length", "learning_rate", "beta",
                                 "temperature", "per_device_batch_size", "gradient_accumulation_steps"])
    p.add_argument("--reward-weight", action="append", default=[], metavar="NAME=W",
                   help="reward weight: format, exact, approx (rating only); default 1 each; repeatable")
    add_options(p, TrainConfig, ["save_steps", "resume", "backend", "device"])
    p.add_argument("-T", action="append", default=[], metavar="KEY=VALUE",
                   help="any trl.GRPOConfig field (trl.SFTConfig with --method sft), e.g. -T top_p=0.9 "
                        "(values parse as JSON when they can)")
    add_options(p, TrainConfig, ["progress"])
    p.add_argument("--json", action="store_true", help="print the training record (without curves) as JSON")
    p.set_defaults(func=commands.cmd_train)


def _list(sub) -> None:
    p = sub.add_parser("list", help="scorers with their install extra and status; datasets and splits")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=commands.cmd_list)


def _run(sub) -> None:
    from prefbench.run_config import RunConfig

    p = sub.add_parser("run", help="score a split with a scorer; resumable; writes a run folder")
    add_options(p, RunConfig, RUN_FLAGS)
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.set_defaults(func=commands.cmd_run)


def _rank(sub) -> None:
    from prefbench.scorer_spec import ScorerSpec

    p = sub.add_parser("rank", help="rank images for one prompt, best first (best-of-N), with scores and reasoning")
    add_options(p, ScorerSpec, ["name", "model"])
    p.add_argument("--prompt", required=True, help="the text prompt the images were generated for")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, WebP, ...)")
    add_options(p, ScorerSpec, ["engine", "base_urls", "params", "rollouts"])
    p.add_argument("--mode", default="anchor", choices=["anchor", "round_robin"],
                   help="pairwise scorers: anchor (N-1 comparisons with a seeded anchor; default) or round_robin "
                        "(every pair; score = win rate)")
    add_options(p, ScorerSpec, ["seed"])
    p.add_argument("--no-traces", dest="traces", action="store_false", help="do not print reasoning traces")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.set_defaults(func=commands.cmd_rank)


def _evaluate(sub) -> None:
    from prefbench.run_config import METRIC_OPTIONS, RunConfig

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
    add_options(p, RunConfig, [*METRIC_OPTIONS, "limit"],
                limit="evaluate only the first N items, as `prefbench run --limit N` scores them (rows of the "
                      "others are read past): the accuracy of a run made with --limit")
    p.set_defaults(func=commands.cmd_evaluate)


def _compare(sub) -> None:
    from prefbench.run_config import RunConfig

    p = sub.add_parser("compare", help="paired cluster bootstrap of two runs on the same split")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    add_options(p, RunConfig, ["bootstrap_resamples"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=commands.cmd_compare)


def _report(sub) -> None:
    p = sub.add_parser("report", help="write leaderboard.md and a self-contained leaderboard.html from the runs")
    p.add_argument("--results", default="results", help="folder searched for run.json files (default: results)")
    p.add_argument("--out", help="output folder (default: the --results folder)")
    p.add_argument("--items", type=int, default=30, help="items per split in the HTML item browser (default 30; 0: none)")
    p.add_argument("--bootstrap-resamples", type=positive_int, default=10_000, help="paired bootstrap resamples (default 10000)")
    p.set_defaults(func=commands.cmd_report)


def _check(sub) -> None:
    p = sub.add_parser("check", help="regression gate: fail (exit 1) when a run is significantly worse than its baseline")
    p.add_argument("--baseline", required=True, metavar="FILE", help="baseline JSON (format: docs/report.md, 'Baseline file')")
    p.add_argument("--results", default="results", help="folder searched for run.json files (default: results)")
    p.add_argument("--alpha", type=float, default=0.05, help="one-sided significance level (default 0.05)")
    p.add_argument("--write-baseline", action="store_true", help="write FILE from the current runs instead of checking")
    p.add_argument("--bootstrap-resamples", type=positive_int, default=10_000, help="paired bootstrap resamples (default 10000)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=commands.cmd_check)


def _bench_generators(sub) -> None:
    from prefbench.generators import GeneratorConfig

    p = sub.add_parser("bench-generators", help="rank text-to-image generators: mean score per generator over "
                                                "prompts, cluster-bootstrap CIs, paired comparisons, rank stability")
    add_options(p, GeneratorConfig, cli_fields(GeneratorConfig))
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.set_defaults(func=commands.cmd_bench_generators)


def _doctor(sub) -> None:
    p = sub.add_parser("doctor", help="what this machine has: Python, torch/CUDA, install extras, optional envs "
                                      "(reference, vLLM), Chromium, free disk and memory")
    p.add_argument("--import", dest="import_torch", action="store_true",
                   help="also import torch to report CUDA and GPUs (slower)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=commands.cmd_doctor)


def _serve(sub) -> None:
    from prefbench.scorer_spec import ScorerSpec
    from prefbench.serve.config import ServeConfig

    p = sub.add_parser("serve", help="serve a scorer as a reward over HTTP (POST /v1/score), micro-batching "
                                     "concurrent requests; see docs/serve.md")
    add_options(p, ScorerSpec, ["name", "model", "engine", "params", "seed"])
    add_options(p, ServeConfig, cli_fields(ServeConfig))
    p.set_defaults(func=commands.cmd_serve)


def _download(sub) -> None:
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


def _reproduce(sub) -> None:
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


def _merge(sub) -> None:
    p = sub.add_parser("merge", help="join the shard folders of `prefbench run --shard I/N` into one run folder, "
                                     "checking one config hash and that every item is in exactly one shard")
    p.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="the N shard folders")
    p.add_argument("--into", metavar="RUN", help="the merged run folder (default: where a single-process run of the "
                                                 "same configuration goes, under --results)")
    p.add_argument("--results", default="results", help="root for the default run folder (default: results)")
    p.add_argument("--data-dir", help="the dataset's folder, if not where the shards read it")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.set_defaults(func=commands.cmd_merge)


def build_parser() -> argparse.ArgumentParser:
    """Every command's flags; options of a config object (a run, a generator run, a training run,
    the server, a scorer) come from its fields (:mod:`prefbench.config_fields`): one default and
    one help text each."""
    from prefbench import __version__

    parser = argparse.ArgumentParser(
        prog="prefbench", description="How well do reward models predict human preferences between generated images?",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"prefbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _list(sub)
    _run(sub)
    _rank(sub)
    _evaluate(sub)
    _compare(sub)
    _train(sub)
    _report(sub)
    _check(sub)
    _bench_generators(sub)
    _doctor(sub)
    _serve(sub)
    _download(sub)
    _reproduce(sub)
    _merge(sub)
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
