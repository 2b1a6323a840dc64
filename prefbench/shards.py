"""Runs in shards that merge, for schedulers without a cluster engine (Slurm arrays, torchrun,
separate machines).

``prefbench run ... --shard I/N`` scores shard I of a deterministic N-way partition of the items
into a shard folder of its own (``<run folder>-shard<I>of<N>``, resumable like any run). An item
goes to shard ``int(sha256(item_id)[:16], 16) % N``: the partition depends on the item ids alone,
not on their order or on the machine, and all images of an item (its pairs) stay together. A
shard's record has ``kind: shard``, the whole run's config hash, and the RunConfig to replay it.

``prefbench merge SHARD_DIRS... [--into RUN]`` checks that the shards share one config hash and
one N, that every index 0..N-1 is there once and complete, and that every item of the split is in
exactly one shard (naming any gap or overlap); then it writes a normal run folder (by default the
one a single-process run of the same configuration would use) whose samples are the shards' and
whose metrics are computed as one run computes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path

from prefbench.data.model import Split
from prefbench.errors import UsageError
from prefbench.record import RunRecord, ShardInfo
from prefbench.store import RUN_FILE, SAMPLES_FILE, read_record, read_samples

#: RunConfig fields a merge replays (transport, progress and placement are the merge's own)
REPLAYED = ("scorer", "model", "dataset", "split", "data_dir", "limit", "rollouts", "seed", "params", "convention",
            "tie_threshold", "bootstrap_resamples", "bootstrap_seed", "batch_size", "engine",
            "allow_outside_data_dir")


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; a clear error otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise UsageError(f"--shard takes I/N (shard I of N, counted from 0), got {text!r}")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 0 <= index < count:
        raise UsageError(f"--shard {text}: need 0 <= I < N")
    return index, count


def shard_of(item_id: str, count: int) -> int:
    return int(hashlib.sha256(str(item_id).encode()).hexdigest()[:16], 16) % count


def shard_split(split: Split, index: int, count: int) -> Split:
    items = [it for it in split.items if shard_of(it.item_id, count) == index]
    return dataclasses.replace(split, items=items)


def shard_folder(run_dir: Path, index: int, count: int) -> Path:
    return run_dir.with_name(f"{run_dir.name}-shard{index}of{count}")


def shard_block(cfg, split: Split) -> dict:
    """What a shard's record says of itself: its place in the partition, its items, and the
    configuration to replay when merging."""
    index, count = cfg.shard
    replay = {k: getattr(cfg, k) for k in REPLAYED}
    ids = [it.item_id for it in split.items]
    return {"index": index, "count": count, "n_items": len(ids),
            "item_ids_sha256": hashlib.sha256(json.dumps(ids).encode()).hexdigest(),
            "run_config": json.loads(json.dumps(replay, default=str))}


def check_same_shard(previous: RunRecord, cfg, run_dir: Path) -> None:
    held = previous.shard or ShardInfo()
    if (held.index, held.count) != tuple(cfg.shard):
        raise UsageError(f"{run_dir} holds shard {held.index}/{held.count}, not "
                         f"{cfg.shard[0]}/{cfg.shard[1]}; use another --out")


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
