"""``prefbench train``, ``serve``, ``bench-generators`` and ``reproduce``: the commands built on
a scorer rather than runs of one (training, a scoring server, ranking generators, published tables).

Each command imports what it needs inside the function (torch, fastapi and the rest load only
when the command runs)."""

from __future__ import annotations

import sys

from prefbench.cli_output import _clean, _fmt, _print_json


def cmd_bench_generators(args) -> int:
    from prefbench.config_fields import cli_fields, from_args
    from prefbench.generators import GeneratorConfig, bench_generators, flat_summary, format_text

    cfg = GeneratorConfig(**from_args(GeneratorConfig, args, cli_fields(GeneratorConfig)))
    record = bench_generators(cfg)
    if args.json:
        _print_json(_clean(flat_summary(record)))
    else:
        print(format_text(record))
    if record.counts.ok == 0:
        print(f"prefbench: error: no image scored; see the errors in {record.run_dir}/samples.jsonl",
              file=sys.stderr)
        return 1
    return 0


def cmd_train(args) -> int:
    from prefbench.config_fields import cli_fields, from_args
    from prefbench.registry import parse_param
    from prefbench.training.config import PROGRESS_KEY, TrainConfig
    from prefbench.training.trainer import train

    scale = {}
    if args.rating_scale:
        from prefbench.errors import UsageError

        low, sep, high = args.rating_scale.partition("-")
        if not sep or not low.strip().isdigit() or not high.strip().isdigit():
            raise UsageError(f"--rating-scale must look like 1-7, got {args.rating_scale!r}")
        scale = {"rating_min": int(low), "rating_max": int(high)}
    cfg = TrainConfig(**from_args(TrainConfig, args, cli_fields(TrainConfig)), lora=args.lora,
                      reward_weights=dict(parse_param(w) for w in args.reward_weight) or None,
                      trl=dict(parse_param(t) for t in args.T), **scale)
    rec = train(cfg)
    import os

    if int(os.environ.get("RANK", "0")) != 0:  # under accelerate/torchrun only the main process reports
        return 0
    if args.json:
        _print_json(_clean({k: v for k, v in rec.items() if k != "curves"}))
        return 0
    watch = PROGRESS_KEY[rec["method"]]
    last = rec["curves"].get(watch) or [[None, float("nan")]]
    scorer = "expected_rating" if rec["task"] == "rating" else "anchor_pairwise"
    print(f"trained {rec['steps']} {rec['method'].upper()} steps ({rec['steps_this_run']} in this run, "
          f"{_fmt(rec['steps_per_second'], 3)} steps/s) with {rec['backend']['name']} on {rec['backend']['device']}; "
          f"last {watch} {_fmt(last[-1][1], 3)}")
    print(f"  wrote {args.output} ({rec['output']['format']}) and {args.output}/prefbench_train.json")
    scale = rec["scorer_defaults"].get("rating_scale")
    opt = f" -S scale={scale}" if scale and scale != "1-5" else ""  # the scorers default to 1-5
    print(f"  score it: prefbench run --scorer {scorer} --model {args.output}{opt} --dataset demo")
    return 0


def cmd_serve(args) -> int:
    from prefbench.config_fields import cli_fields, from_args
    from prefbench.scorer_spec import parse_params
    from prefbench.serve.config import ServeConfig
    from prefbench.serve.server import serve

    config = ServeConfig(**from_args(ServeConfig, args, cli_fields(ServeConfig)))
    return serve(args.scorer, args.model, args.engine, options=parse_params(args.S), seed=args.seed,
                 **config.server_options(), **config.limits())


def cmd_reproduce(args) -> int:
    from prefbench.reproduce.command import cmd_reproduce as reproduce

    return reproduce(args)
