"""The commands' implementations, one ``cmd_<name>(args) -> exit code`` each (the parser and
``main`` are in :mod:`prefbench.cli`). Each imports what it needs inside the function, so that
``prefbench --help`` and ``prefbench list`` import no torch, transformers, openai or fastapi."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from prefbench.cli_output import _clean, _extra_lines, _fmt, _print_json

if TYPE_CHECKING:
    from prefbench.record import RunRecord


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

    models = [{"alias": prefix, "models": [n if n == prefix else f"{prefix}/{n}" for n in a.names()],
               "description": a.description,
               "defaults": {s: f"{prefix}/{n}" for s, n in a.defaults.items()}} for prefix, a in aliases().items()]
    from prefbench.judges import describe as describe_judges

    judges = describe_judges()
    if args.json:
        _print_json({"scorers": scorers, "engines": engines, "datasets": datasets, "conventions": conventions,
                     "models": models, "judges": judges})
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
    print("\nJudge protocols (evaluate --judge-outputs FILE --protocol NAME; see docs/judges.md):")
    for j in judges:
        src = f" ({j['source']})" if j["source"] != "builtin" else ""
        print(f"  {j['name']:<22} {j['description']}{src}")
    print("\nDatasets (--dataset, --split):")
    for d in datasets:
        print(f"  {d['name']:<12} splits: {', '.join(d['splits']):<36} convention: {d['convention']}")
        print(f"  {'':<12} {d['description']}" + (f" ({d['source']})" if d["source"] != "builtin" else ""))
    from prefbench.pinned import PinnedModel

    print("\nModel aliases (--model ALIAS/NAME) and pinned familiar names (--model NAME):")
    for m in models:
        pinned = isinstance(aliases()[m["alias"]], PinnedModel)
        state = ("not downloaded: prefbench download --weights " + m["alias"]) if pinned else "none built"
        print(f"  {m['alias']:<18} {m['description']}: {', '.join(m['models']) or state}")
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
    from prefbench.errors import UsageError

    if args.weights:
        if args.dataset or args.data_dir or args.split:
            raise UsageError("--weights NAME fetches a model: give no DATASET, --split or --data-dir with it")
        return _download_weights(args)
    if not args.dataset or not args.data_dir:
        raise UsageError("download needs DATASET and --data-dir DIR (or --weights NAME for a model's files)")
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


def _download_weights(args) -> int:
    from prefbench.data.download import human_size
    from prefbench.pinned_download import download_weights

    m = download_weights(args.weights, progress=not args.no_progress)
    if args.json:
        _print_json(m)
        return 0
    size = sum(f["size"] for f in m["files"])
    print(f"{m['name']}: {len(m['files'])} files ({human_size(size)}) in {m['folder']}; "
          f"{sum(f['fetched'] for f in m['files'])} fetched now")
    for f in m["files"]:
        print(f"  {f['path']:<36} {f['repo']}@{f['revision'][:12]}  checked: {f['checked']}")
    opts = "".join(f" -S {k}={v}" for k, v in m["params"].items())
    print(f"  next: prefbench run --scorer {m['scorer']} --model {m['name']} ...  (implies{opts or ' no options'})")
    return 0


def _run_text(rec: RunRecord) -> str:
    m, c, ds = rec.metrics, rec.counts, rec.dataset
    model = f" ({rec.model_id})" if rec.model_id else ""
    n_images = sum(v for k, v in c.to_json().items() if k != "forced")
    accuracy = (f"{m.get('measure', 'accuracy')} {_fmt(m.accuracy)}  95% CI [{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
                if c.ok else f"accuracy n/a (0 of {n_images} scored)")
    lines = [
        f"{rec.scorer.name}{model} on {ds.name}/{ds.split} — {m.convention} convention"
        + (" [cached]" if rec.cached else ""),
        f"  {accuracy}  ({m.n_prompts} prompts, {m.n_pairs} pairs; cluster bootstrap over prompts)",
        f"  per-item Kendall tau-b {_fmt(m.kendall_tau_b, 3)}  Spearman {_fmt(m.spearman, 3)}",
        f"  images: {c.ok} ok, {c.unparsed} unparsed, {c.error} error, {c.forced or 0} forced"
        + (f", {c.missing} missing" if c.missing else ""),
    ]
    lines += _extra_lines(m.to_json())
    if m.has("brier"):
        lines.append(f"  calibration: Brier {_fmt(m.brier)}  ECE {_fmt(m.ece)}")
    if ds.note:
        lines.append(f"  note: {ds.note}")
    lines.append(f"  run: {rec.run_dir}")
    return "\n".join(lines)


def cmd_run(args) -> int:
    from prefbench.runner import RunConfig, flat_summary, run

    cfg = RunConfig.from_args(args)
    if args.executor != "local" and args.scorer is None:
        from prefbench.errors import UsageError

        raise UsageError("--executor ray runs one scorer's run (or a matrix): give --scorer")
    if cfg.shard is not None:
        from prefbench.matrix import is_matrix

        if args.scorer is None or is_matrix(args.scorer, args.dataset, args.split):
            from prefbench.errors import UsageError

            raise UsageError("--shard splits one run: give one --scorer, --dataset and --split")
    if args.scorer is None:
        from prefbench.suites import suite_for

        suite = None if args.model else suite_for(args.dataset)  # the bundled demo's, registered by the demo
        if suite is None:
            from prefbench.errors import UsageError
            from prefbench.registry import stale_metadata

            raise UsageError("--scorer is required unless you run the bundled demo suite (no --model, --dataset demo)"
                             + ("; prefbench's installed metadata predates the demo's entry points: reinstall with "
                                "`pip install --no-deps -e .`" if stale_metadata() else ""))
        if "," in (args.split or ""):
            from prefbench.errors import UsageError

            raise UsageError("the demo suite (no --scorer) runs on one split; for several, name the scorers: "
                             f"prefbench run --scorer random,clip --split {args.split}")
        rows = suite.run(cfg)
        if args.json:
            _print_json(_clean(rows))
        else:
            print(suite.leaderboard_text(rows))
        return 0
    from prefbench.matrix import is_matrix

    if is_matrix(args.scorer, args.dataset, args.split, args.model):  # every combination, one ordinary run each
        from prefbench.matrix import leaderboard_text, run_matrix, split_list

        rows = run_matrix(cfg, split_list(args.scorer), split_list(args.dataset), split_list(args.split))
        _print_json(_clean(rows)) if args.json else print(leaderboard_text(rows))
        return 1 if any("failed" in r for r in rows) else 0
    record = run(cfg)
    if args.json:
        _print_json(_clean(flat_summary(record)))
    else:
        print(_run_text(record))
    if record.counts.ok == 0:
        c = record.counts
        print(f"prefbench: error: no image scored ({c.error} error, {c.unparsed} unparsed, "
              f"{c.missing or 0} missing){_first_failure(record.run_dir)}; see the errors in "
              f"{record.run_dir}/samples.jsonl", file=sys.stderr)
        return 1
    return 0


def _first_failure(run_dir: str) -> str:
    """'; first error: ...' from a run's samples (and whether a rerun retries the errors)."""
    from pathlib import Path

    from prefbench.errors import PrefbenchError
    from prefbench.store import SAMPLES_FILE, read_samples

    try:
        rows = read_samples(Path(run_dir) / SAMPLES_FILE, repair=False)
    except (OSError, ValueError, PrefbenchError):  # only a hint: the counts are already printed
        return ""
    failed = [r for r in rows.values() if r.get("status") in ("error", "unparsed")]
    if not failed:
        return ""
    first = failed[0]
    what = str(first.get("error") or first.get("status"))
    retry = sum(1 for r in failed if r.get("retryable"))
    again = (f" ({'all' if retry == len(failed) else retry} retryable: the same command tries them again)"
             if retry else " (not retryable: the same command does not score them again)")
    return f"; first {first['status']}: {what}{again}"


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
    judge_only = (getattr(args, "on_parse_failure", "official") != "official" or getattr(args, "read_out", "hard") != "hard"
                  or getattr(args, "parsed_out", None))
    if getattr(args, "judge_outputs", None) or getattr(args, "protocol", None) or judge_only:
        from prefbench.judges.command import evaluate_command

        return evaluate_command(args)
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


def cmd_compare(args) -> int:
    from prefbench.errors import UsageError
    from prefbench.metrics import paired_bootstrap
    from prefbench.report.runs import Side, pairing_problem, run_view
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
    problem = pairing_problem(Side.of(va), Side.of(vb))  # the leaderboard's and check's rule
    if problem == "different splits":
        raise UsageError(f"runs are on different splits: A {va.dataset}/{va.split}, B {vb.dataset}/{vb.split}")
    if problem == "different data":
        raise UsageError(f"runs scored different data (content hash {str(va.content_hash)[:8]} vs "
                         f"{str(vb.content_hash)[:8]}): their prompts cannot be paired")
    if problem == "different conventions":
        raise UsageError(f"runs use different metric conventions ({va.convention} vs {vb.convention})")
    res = paired_bootstrap(va.per_prompt(), vb.per_prompt(), n_resamples=args.bootstrap_resamples)
    out = {
        "dataset": va.dataset, "split": va.split, "convention": va.convention,
        "a": {"run_dir": str(args.run_a), "scorer": va.scorer, "model": va.model, "accuracy": va.record.metrics.accuracy},
        "b": {"run_dir": str(args.run_b), "scorer": vb.scorer, "model": vb.model, "accuracy": vb.record.metrics.accuracy},
        **res.to_json(),
    }
    if args.json:
        _print_json(_clean(out))
    else:
        print(f"{out['dataset']}/{out['split']} — {out['convention']} convention, {res.n_common} shared prompts")
        print(f"  A {out['a']['scorer']}: {_fmt(out['a']['accuracy'])}   B {out['b']['scorer']}: {_fmt(out['b']['accuracy'])}")
        print(f"  A - B = {_fmt(res.difference)}  95% CI [{_fmt(res.ci_low)}, {_fmt(res.ci_high)}]"
              f"  (paired cluster bootstrap, {res.n_resamples} resamples)")
        print(f"  share of resamples where A - B <= 0: {_fmt(res.p_a_better)}; where A - B >= 0: "
              f"{_fmt(res.p_b_better)}")
        print("  (one-sided bootstrap p-values: the first small means A is reliably better, the second small "
              "means B is)")
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


def cmd_merge(args) -> int:
    from prefbench.merge import merge
    from prefbench.runner import flat_summary

    record = merge(args.shards, args.into, args.results, args.data_dir)
    if args.json:
        _print_json(_clean(flat_summary(record)))
    else:
        print(_run_text(record))
    return 0
