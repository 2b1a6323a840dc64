"""``prefbench merge SHARD_DIRS... [--into RUN]``: join the shards of ``prefbench run --shard I/N``.

It checks that the shards share one config hash and one N, that every index 0..N-1 is there once
and complete, and that every item of the split is in exactly one shard (naming any gap or
overlap); then it writes a normal run folder (by default the one a single-process run of the same
configuration would use) whose samples are the shards' and whose metrics are computed as one run
computes them. The partition itself is :mod:`prefbench.shards`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefbench.errors import UsageError
from prefbench.record import RunRecord
from prefbench.shards import shard_of
from prefbench.store import RUN_FILE, SAMPLES_FILE, read_record, read_samples


def _read_shards(dirs: list[Path]) -> list[tuple[Path, RunRecord]]:
    out = []
    for d in dirs:
        path = Path(d) / RUN_FILE
        if not path.is_file():
            raise UsageError(f"{d}: no {RUN_FILE}; give the shard folders `prefbench run --shard I/N` wrote")
        rec = read_record(path)
        if rec.kind != "shard" or rec.shard is None:
            raise UsageError(f"{d} is not a shard (kind {rec.kind!r}); merge joins the folders "
                             "`prefbench run --shard I/N` writes")
        out.append((Path(d), rec))
    if not out:
        raise UsageError("give the shard folders to merge")
    return out


def check_shards(shards: list[tuple[Path, RunRecord]]) -> tuple[str, int]:
    """The shards' common config hash and count; a UsageError naming what does not fit."""
    hashes = {rec.config_hash for _, rec in shards}
    if len(hashes) != 1:
        detail = ", ".join(f"{d.name}: {str(rec.config_hash)[:8]}" for d, rec in shards)
        raise UsageError(f"the shards are of different configurations (config hashes {detail}); merge shards of one run")
    counts = {rec.shard.count for _, rec in shards}
    if len(counts) != 1:
        raise UsageError(f"the shards split the items different ways (N = {', '.join(map(str, sorted(counts)))})")
    count = counts.pop()
    seen: dict[int, Path] = {}
    for d, rec in shards:
        i = rec.shard.index
        if i in seen:
            raise UsageError(f"shard {i}/{count} is given twice: {seen[i]} and {d} (overlap)")
        seen[i] = d
        if not rec.complete:
            raise UsageError(f"shard {i}/{count} ({d}) is {rec.status}: rerun its command to finish it first")
    gap = sorted(set(range(count)) - set(seen))
    if gap:
        raise UsageError(f"shard(s) {', '.join(f'{i}/{count}' for i in gap)} missing (gap): merge needs all {count}")
    return hashes.pop(), count


def merge(dirs: list[Path], into: Path | None = None, results_root: str = "results", data_dir: str | None = None,
          log=lambda m: print(m, file=sys.stderr)) -> dict:
    """Join complete shards into one run folder; returns its record (as ``prefbench run``'s)."""
    from prefbench.runner import RunConfig, run

    shards = _read_shards(dirs)
    config_hash, count = check_shards(shards)
    rows, owner = [], {}
    for d, _ in shards:
        for key, row in read_samples(d / SAMPLES_FILE).items():
            if key[0] in owner and owner[key[0]] != d:
                raise UsageError(f"item {key[0]!r} is in two shards: {owner[key[0]]} and {d} (overlap)")
            owner[key[0]] = d
            rows.append(row)
    replay = dict(shards[0][1].shard.run_config)
    if data_dir is not None:
        replay["data_dir"] = data_dir
    cfg = RunConfig(**replay, results_root=results_root, out=str(into) if into else None, progress=False)
    from prefbench.data import load_dataset

    split = load_dataset(cfg.dataset, cfg.split, cfg.data_dir, limit=cfg.limit,
                         allow_outside_data_dir=cfg.allow_outside_data_dir)
    expected = {it.item_id for it in split.items}
    stray = sorted(set(owner) - expected)
    if stray:
        raise UsageError(f"{len(stray)} item(s) in the shards are not in {split.dataset}/{split.split}, e.g. {stray[:3]}")
    wrong = [(i, d) for i, d in owner.items() if shard_of(i, count) != _index(shards, d)]
    if wrong:
        raise UsageError(f"item {wrong[0][0]!r} is in {wrong[0][1]}, which is not its shard")
    missing = sorted(expected - set(owner))
    if missing:
        raise UsageError(f"{len(missing)} item(s) are in no shard (gap), e.g. {missing[:3]}")
    from prefbench.runner import build_scorer, config_hash_of

    scorer, spec, model_info = build_scorer(cfg)  # builds only: no weights load
    now = config_hash_of(spec, scorer, split, cfg, model_info)
    if now != config_hash:
        raise UsageError(f"this configuration's hash here is {now[:8]}, the shards' {config_hash[:8]}: the data, the "
                         "model or prefbench changed since they ran; nothing was merged")
    return run(cfg, log=log, seed_rows=rows)


def _index(shards: list[tuple[Path, RunRecord]], d: Path) -> int:
    return next(rec.shard.index for sd, rec in shards if sd == d)
