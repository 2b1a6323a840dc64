"""The ``prefbench`` command line. Thin: each command imports its implementation lazily, so
``prefbench --help`` and ``prefbench list`` never import torch, transformers or openai."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

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


def _fmt(x, digits=4):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, allow_nan=False, default=str))


def _clean(obj):
    """NaN -> None, so --json output is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def cmd_list(args) -> int:
    from prefbench.data import datasets as all_datasets
    from prefbench.registry import EXTRA_HINTS, engine_entries, entries

    scorers = [
        {"name": e.name, "extra": e.extra, "installed": e.installed, "missing": e.missing_modules(),
         "source": e.source, "description": e.description}
        for e in entries().values()
    ]
    from prefbench.metrics.conventions import conventions as all_conventions

    conventions = [{"name": c.name, "source": c.source, "description": c.description,
                    "options": list(c.options)} for c in all_conventions().values()]
    engines = [
        {"name": e.name, "extra": e.extra, "installed": e.installed, "missing": e.missing_modules(),
         "source": e.source, "description": e.description}
        for e in engine_entries().values()
    ]
    datasets = [
        {"name": d.name, "splits": list(d.splits), "convention": d.convention, "needs_data_dir": d.needs_data_dir,
         "kind": d.kind, "source": d.source, "description": d.description}
        for d in all_datasets().values()
    ]
    from prefbench.models import aliases

    models = [{"alias": prefix, "models": [f"{prefix}/{n}" for n in a.names()], "description": a.description,
               "defaults": {s: f"{prefix}/{n}" for s, n in a.defaults.items()}} for prefix, a in aliases().items()]
    if args.json:
        _print_json({"scorers": scorers, "engines": engines, "datasets": datasets, "conventions": conventions,
                     "models": models})
        return 0
    print("Scorers:")
    for s in scorers:
        state = "installed" if s["installed"] else f"needs: pip install 'prefbench[{s['extra']}]'"
        extra = f"[{s['extra'] or 'core'}]"
        print(f"  {s['name']:<18} {extra:<13} {state:<40} {s['description']}")
    print("\nEngines of the VLM scorers (--engine; options with -S, see docs/engines.md):")
    for e in engines:
        state = "installed" if e["installed"] else (
            "needs: scripts/setup_vllm_env.sh" if e["extra"] in EXTRA_HINTS else f"needs: pip install 'prefbench[{e['extra']}]'")
        print(f"  {e['name']:<18} {'[' + (e['extra'] or 'core') + ']':<13} {state:<40} {e['description']}")
    print("\nAccuracy conventions (--convention; each dataset names its official one):")
    for c in conventions:
        src = f" ({c['source']})" if c["source"] != "builtin" else ""
        print(f"  {c['name']:<22} {c['description']}{src}")
    print("\nDatasets (--dataset, --split):")
    for d in datasets:
        print(f"  {d['name']:<12} splits: {', '.join(d['splits']):<36} convention: {d['convention']}")
        print(f"  {'':<12} {d['description']}" + (f" ({d['source']})" if d["source"] != "builtin" else ""))
    print("\nModel aliases (--model ALIAS/NAME):")
    for m in models:
        print(f"  {m['alias']:<18} {m['description']}: {', '.join(m['models']) or 'none built'}")
    return 0


def cmd_doctor(args) -> int:
    from prefbench.doctor import collect, render

    info = collect(import_torch=args.import_torch)
    if args.json:
        _print_json(info)
    else:
        print(render(info))
    return 0


def cmd_download(args) -> int:
    from prefbench.data.download import download, human_size

    m = download(args.dataset, args.split, args.data_dir, revision=args.revision, progress=not args.no_progress)
    if args.json:
        _print_json(m)
        return 0
    size = sum(f["size"] for f in m["files"])
    print(f"{m['dataset']}/{m['split']}: {len(m['files'])} files ({human_size(size)}) from {m['repo_id']} at "
          f"{m['revision'][:12]} in {args.data_dir}; {sum(f['fetched'] for f in m['files'])} fetched now")
    for a in m["archives"]:
        print(f"  {a['archive']}: {a['members']} members unpacked ({'now' if a['unpacked'] == 'now' else 'earlier'})")
    load = m["load"]
    if load["ok"]:
        images = f", {load['images_present']} of {load['images']} images present" if load.get("images") else ""
        print(f"  loads: {load['items']} items{images}")
        print(f"  next: prefbench run --scorer NAME --dataset {m['dataset']} --split {m['split']} --data-dir {args.data_dir}")
    else:
        print(f"  does not load yet: {load['error']}")
    print(f"  manifest: {Path(args.data_dir) / 'prefbench_download.json'}")
    return 0


def _run_text(rec: dict) -> str:
    m, c = rec["metrics"], rec["counts"]
    ds = rec["dataset"]
    model = f" ({rec['model']['id']})" if rec["model"].get("id") else ""
    n_images = sum(v for k, v in c.items() if k != "forced")
    accuracy = (f"{m.get('measure', 'accuracy')} {_fmt(m['accuracy'])}  95% CI [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]"
                if c["ok"] else f"accuracy n/a (0 of {n_images} scored)")
    lines = [
        f"{rec['scorer']['name']}{model} on {ds['name']}/{ds['split']} — {m['convention']} convention"
        + (" [cached]" if rec.get("cached") else ""),
        f"  {accuracy}  ({m['n_prompts']} prompts, {m['n_pairs']} pairs; cluster bootstrap over prompts)",
        f"  per-item Kendall tau-b {_fmt(m.get('kendall_tau_b'), 3)}  Spearman {_fmt(m.get('spearman'), 3)}",
        f"  images: {c['ok']} ok, {c['unparsed']} unparsed, {c['error']} error, {c.get('forced', 0)} forced"
        + (f", {c['missing']} missing" if c.get("missing") else ""),
    ]
    lines += _extra_lines(m)
    if "brier" in m:
        lines.append(f"  calibration: Brier {_fmt(m['brier'])}  ECE {_fmt(m['ece'])}")
    if ds.get("note"):
        lines.append(f"  note: {ds['note']}")
    lines.append(f"  run: {rec['run_dir']}")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from prefbench.registry import parse_param
    from prefbench.runner import RunConfig, flat_summary, run

    params = dict(parse_param(p) for p in args.S)
    cfg = RunConfig(
        scorer=args.scorer, model=args.model, dataset=args.dataset, split=args.split, data_dir=args.data_dir,
        limit=args.limit, rollouts=args.rollouts, seed=args.seed, out=args.out, params=params,
        convention=args.convention, tie_threshold=args.tie_threshold, bootstrap_resamples=args.bootstrap_resamples,
        results_root=args.results, progress=not args.no_progress, batch_size=args.batch_size,
        engine=args.engine, base_urls=args.base_url, api_key_env=args.api_key_env,
        allow_outside_data_dir=args.allow_outside_data_dir, wait=args.wait,
    )
    if args.scorer is None:
        from prefbench.demo_zoo.suite import leaderboard_text, run_suite

        if args.dataset != "demo" or args.model:
            from prefbench.errors import UsageError

            raise UsageError("--scorer is required unless you run the bundled demo suite (no --model, --dataset demo)")
        rows = run_suite(cfg)
        if args.json:
            _print_json(_clean(rows))
        else:
            print(leaderboard_text(rows))
        return 0
    record = run(cfg)
    if args.json:
        _print_json(_clean(flat_summary(record)))
    else:
        print(_run_text(record))
    if record["counts"]["ok"] == 0:
        c = record["counts"]
        print(f"prefbench: error: no image scored ({c['error']} error, {c['unparsed']} unparsed, "
              f"{c.get('missing', 0)} missing); see the errors in {record['run_dir']}/samples.jsonl", file=sys.stderr)
        return 1
    return 0


def cmd_rank(args) -> int:
    from prefbench.api import load_scorer, ranking
    from prefbench.registry import parse_param

    params = dict(parse_param(p) for p in args.S)
    for key, value in (("rollouts", args.rollouts), ("base_url", args.base_url or None)):
        if value is not None:
            params[key] = value
    with load_scorer(args.scorer, args.model, args.engine, seed=args.seed, mode=args.mode, **params) as scorer:
        item = scorer.score_items([(args.prompt, args.images)], on_error="nan")[0]
        info = scorer.info()
    rows = ranking(item, args.images)
    failed = [r for r in rows if r["status"] != "ok"]
    if args.json:
        _print_json(_clean({"scorer": info["scorer"], "model": info["model"].get("id"), "mode": info["mode"],
                            "prompt": args.prompt, "ranking": rows, "note": info.get("note")}))
    else:
        model = info["model"].get("id")
        print(f"{info['scorer']}{f' ({model})' if model else ''} ranks {len(rows)} images for {args.prompt!r}"
              + (" (round robin)" if info["mode"] == "round_robin" else "") + ", best first:")
        for r in rows:
            head = f"{r['rank']:>3}. {r['score']:.4f}" if r["status"] == "ok" else f"  -  {r['status']}"
            print(f"{head}  {r['image']}" + (f"  ({r['error']})" if r["error"] else ""))
            for text in r["traces"] if args.traces else []:
                print("       " + " ".join(text.split()))
        if info.get("note"):
            print(f"note: {info['note']}", file=sys.stderr)
    if failed:
        print(f"prefbench: error: {len(failed)} of {len(rows)} images could not be scored", file=sys.stderr)
        return 1
    return 0


def cmd_evaluate(args) -> int:
    from prefbench.evaluate import evaluate_file

    result = evaluate_file(args.dataset, args.scores, args.split, args.data_dir, args.convention,
                           args.tie_threshold, args.bootstrap_resamples, verdicts_path=args.verdicts)
    if args.json:
        _print_json(_clean(result))
    else:
        what = " + ".join(str(p) for p in (args.scores, args.verdicts) if p)
        print(f"{what} on {result['dataset']}/{result['split']} — {result['convention']} convention")
        print(f"  {result.get('measure', 'accuracy')} {_fmt(result['accuracy'])}  "
              f"95% CI [{_fmt(result['ci_low'])}, {_fmt(result['ci_high'])}]"
              f"  ({result['n_prompts']} prompts, {result['n_pairs']} pairs)")
        for line in _extra_lines(result):
            print(line)
        if args.scores:
            print(f"  per-item Kendall tau-b {_fmt(result['kendall_tau_b'], 3)}  Spearman {_fmt(result['spearman'], 3)}")
    return 0


def _extra_lines(m: dict) -> list[str]:
    """The figures a convention's summary added (``summary_keys``), rules (``*_rule``) on their own lines."""
    keys = m.get("summary_keys") or []
    shown = [f"{k} {_fmt(m[k]) if isinstance(m[k], float) else m[k]}" for k in keys
             if k in m and not k.endswith("_rule")]
    lines = ["  " + "  ".join(shown)] if shown else []
    lines += [f"  rule: {m[k]}" for k in keys if k in m and k.endswith("_rule")]
    return lines


def cmd_compare(args) -> int:
    from prefbench.errors import UsageError
    from prefbench.metrics import paired_bootstrap
    from prefbench.report.runs import run_view
    from prefbench.store import RUN_FILE

    views = []
    for name, given in (("A", args.run_a), ("B", args.run_b)):
        file = Path(given)
        file = file / RUN_FILE if file.is_dir() else file
        view = run_view(file, file.parent)  # the report's and check's validated view of a record
        if view.status != "complete" or view.per_prompt() is None:
            raise UsageError(f"run {name} ({given}) is not a finished run (status {view.status!r}); "
                             "finish it (rerun its command) before comparing")
        views.append(view)
    va, vb = views
    if (va.dataset, va.split) != (vb.dataset, vb.split):
        raise UsageError(f"runs are on different splits: A {va.dataset}/{va.split}, B {vb.dataset}/{vb.split}")
    if va.content_hash is None or va.content_hash != vb.content_hash:
        raise UsageError(f"runs scored different data (content hash {str(va.content_hash)[:8]} vs "
                         f"{str(vb.content_hash)[:8]}): their prompts cannot be paired")
    if va.convention != vb.convention:
        raise UsageError(f"runs use different metric conventions ({va.convention} vs {vb.convention})")
    a, b = va.record, vb.record
    res = paired_bootstrap(va.per_prompt(), vb.per_prompt(), n_resamples=args.bootstrap_resamples)
    out = {
        "dataset": a["dataset"]["name"], "split": a["dataset"]["split"], "convention": a["metrics"]["convention"],
        "a": {"run_dir": str(args.run_a), "scorer": a["scorer"]["name"], "model": a["model"].get("id"),
              "accuracy": a["metrics"]["accuracy"]},
        "b": {"run_dir": str(args.run_b), "scorer": b["scorer"]["name"], "model": b["model"].get("id"),
              "accuracy": b["metrics"]["accuracy"]},
        **res.to_json(),
    }
    if args.json:
        _print_json(_clean(out))
    else:
        print(f"{out['dataset']}/{out['split']} — {out['convention']} convention, {res.n_common} shared prompts")
        print(f"  A {out['a']['scorer']}: {_fmt(out['a']['accuracy'])}   B {out['b']['scorer']}: {_fmt(out['b']['accuracy'])}")
        print(f"  A - B = {_fmt(res.difference)}  95% CI [{_fmt(res.ci_low)}, {_fmt(res.ci_high)}]"
              f"  (paired cluster bootstrap, {res.n_resamples} resamples)")
        print(f"  one-sided p: A better {_fmt(res.p_a_better)}, B better {_fmt(res.p_b_better)}")
    return 0


def cmd_report(args) -> int:
    from prefbench.report import write_report

    if args.items < 0:
        from prefbench.errors import UsageError

        raise UsageError(f"--items must be >= 0, got {args.items}")
    md, html = write_report(args.results, args.out, n_items=args.items, n_resamples=args.bootstrap_resamples)
    print(f"wrote {md}\nwrote {html}")
    return 0


def cmd_check(args) -> int:
    from prefbench.report.check import format_table, run_check, write_baseline
    from prefbench.report.runs import find_runs

    _, runs = find_runs(args.results)
    if args.write_baseline:
        n = write_baseline(args.baseline, runs)
        print(f"wrote {args.baseline} ({n} entries from {args.results})")
        return 0
    rows = run_check(args.baseline, runs, args.alpha, args.bootstrap_resamples)
    if args.json:
        _print_json(_clean([r.to_json() for r in rows]))
    else:
        print(format_table(rows, args.alpha))
    return 1 if any(r.verdict == "FAIL" for r in rows) else 0


def cmd_bench_generators(args) -> int:
    from prefbench.generators import GeneratorConfig, bench_generators, flat_summary, format_text
    from prefbench.registry import parse_param

    cfg = GeneratorConfig(
        scorer=args.scorer, prompts=args.prompts, images=args.images, model=args.model, engine=args.engine,
        params=dict(parse_param(p) for p in args.S), seed=args.seed, bootstrap_resamples=args.bootstrap_resamples,
        results_root=args.results, out=args.out, progress=not args.no_progress, batch_size=args.batch_size,
        wait=args.wait, mode=args.mode,
    )
    record = bench_generators(cfg)
    if args.json:
        _print_json(_clean(flat_summary(record)))
    else:
        print(format_text(record))
    if record["counts"]["ok"] == 0:
        print(f"prefbench: error: no image scored; see the errors in {record['run_dir']}/samples.jsonl",
              file=sys.stderr)
        return 1
    return 0


def cmd_train(args) -> int:
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
    cfg = TrainConfig(
        task=args.task, model=args.model, output=args.output, dataset=args.dataset, split=args.split,
        method=args.method,
        data_dir=args.data_dir, fraction=args.fraction, seed=args.seed, limit=args.limit, max_steps=args.max_steps,
        epochs=args.epochs, learning_rate=args.learning_rate, num_generations=args.num_generations,
        max_completion_length=args.max_completion_length, temperature=args.temperature, beta=args.beta,
        per_device_batch_size=args.batch_size, gradient_accumulation_steps=args.grad_accum,
        reward_weights=dict(parse_param(w) for w in args.reward_weight) or None, lora=args.lora,
        lora_r=args.lora_r, save_steps=args.save_steps, resume=args.resume, backend=args.backend,
        device=args.device, progress=not args.no_progress, trl=dict(parse_param(t) for t in args.T),
        max_pixels=args.max_pixels, allow_outside_data_dir=args.allow_outside_data_dir, **scale,
    )
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
    from prefbench.registry import parse_param
    from prefbench.serve.server import serve

    return serve(
        args.scorer, args.model, args.engine, options=dict(parse_param(p) for p in args.S), host=args.host,
        port=args.port, token_env=args.token_env, seed=args.seed, mode=args.mode, batch_size=args.batch_size,
        log_level=args.log_level, max_batch_images=args.max_batch_size, max_wait_ms=args.max_wait_ms,
        request_timeout_s=args.timeout, max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_images=args.max_images, max_pixels=args.max_pixels, max_queue=args.max_queue,
    )


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
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="score a split with a scorer; resumable; writes a run folder")
    p.add_argument("--scorer", help="scorer name (see `prefbench list`); omitted: every bundled demo scorer "
                   "on the demo test split, printed as a leaderboard")
    p.add_argument("--model", help="model path or id for scorers that load one")
    p.add_argument("--dataset", default="demo", help="dataset name (default: demo)")
    p.add_argument("--split", help="split (default: the dataset's test split)")
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
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    _add_metric_options(p)
    p.set_defaults(func=cmd_run)

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
    p.set_defaults(func=cmd_rank)

    p = sub.add_parser("evaluate", help="official accuracy + CI of your own per-image scores (JSONL)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--split")
    p.add_argument("--data-dir", help="folder holding the annotation file (images are not needed)")
    p.add_argument("--scores", help='JSONL: {"prompt_id": ..., "image_index": i, "score": x} per image '
                   '(optional "elements": {element: p})')
    p.add_argument("--verdicts", help='JSONL of a judge\'s answers: {"prompt_id": ..., "verdict": text} (genai_judge) '
                   'or with "order": forward/reverse (mmrb2); see docs/datasets.md')
    p.add_argument("--json", action="store_true")
    _add_metric_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compare", help="paired cluster bootstrap of two runs on the same split")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.add_argument("--bootstrap-resamples", type=_positive_int, default=10_000)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_compare)

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
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("report", help="write leaderboard.md and a self-contained leaderboard.html from the runs")
    p.add_argument("--results", default="results", help="folder searched for run.json files (default: results)")
    p.add_argument("--out", help="output folder (default: the --results folder)")
    p.add_argument("--items", type=int, default=30, help="items per split in the HTML item browser (default 30; 0: none)")
    p.add_argument("--bootstrap-resamples", type=_positive_int, default=10_000, help="paired bootstrap resamples (default 10000)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("check", help="regression gate: fail (exit 1) when a run is significantly worse than its baseline")
    p.add_argument("--baseline", required=True, metavar="FILE", help="baseline JSON (format: docs/report.md, 'Baseline file')")
    p.add_argument("--results", default="results", help="folder searched for run.json files (default: results)")
    p.add_argument("--alpha", type=float, default=0.05, help="one-sided significance level (default 0.05)")
    p.add_argument("--write-baseline", action="store_true", help="write FILE from the current runs instead of checking")
    p.add_argument("--bootstrap-resamples", type=_positive_int, default=10_000, help="paired bootstrap resamples (default 10000)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=cmd_check)

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
    p.set_defaults(func=cmd_bench_generators)

    p = sub.add_parser("doctor", help="what this machine has: Python, torch/CUDA, install extras, optional envs "
                                      "(reference, vLLM), Chromium, free disk and memory")
    p.add_argument("--import", dest="import_torch", action="store_true",
                   help="also import torch to report CUDA and GPUs (slower)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)

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
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: a free port, printed on startup)")
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
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level; info logs each request line (default info)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("download", help="fetch a dataset split's files from the hub (huggingface_hub), unpack its "
                                        "archives, write DIR/prefbench_download.json; offline: says what to put where")
    p.add_argument("dataset", metavar="DATASET", help="a dataset with a download manifest (see docs/datasets.md)")
    p.add_argument("--split", help="split (default: the dataset's default split)")
    p.add_argument("--data-dir", required=True, help="folder the files go to (created if needed)")
    p.add_argument("--revision", help="branch, tag or commit of the repository (default: main)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=cmd_download)
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
