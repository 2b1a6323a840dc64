"""``prefbench list``, ``doctor`` and ``download``: what is installed, registered and fetched.

Each command imports what it needs inside the function (``prefbench list`` stays light)."""

from __future__ import annotations

from pathlib import Path

from prefbench.cli_output import _print_json


def catalog() -> dict[str, list[dict]]:
    """What ``prefbench list`` shows: the registered scorers, engines, datasets, conventions, model
    aliases and judge protocols, as JSON-ready rows."""
    from prefbench.data import datasets as all_datasets
    from prefbench.registry import engine_entries, entries

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
    return {"scorers": scorers, "engines": engines, "datasets": datasets, "conventions": conventions,
            "models": models, "judges": judges}


def cmd_list(args) -> int:
    from prefbench.registry import EXTRA_HINTS

    listed = catalog()
    if args.json:
        _print_json(listed)
        return 0
    scorers, engines, datasets = listed["scorers"], listed["engines"], listed["datasets"]
    conventions, models, judges = listed["conventions"], listed["models"], listed["judges"]
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
    from prefbench.models import aliases
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
