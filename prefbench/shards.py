"""Runs in shards that merge, for schedulers without a cluster engine (Slurm arrays, torchrun,
separate machines).

``prefbench run ... --shard I/N`` scores shard I of a deterministic N-way partition of the items
into a shard folder of its own (``<run folder>-shard<I>of<N>``, resumable like any run). An item
goes to shard ``int(sha256(item_id)[:16], 16) % N``: the partition depends on the item ids alone,
not on their order or on the machine, and all images of an item (its pairs) stay together. A
shard's record has ``kind: shard``, the whole run's config hash, and the RunConfig to replay it.

``prefbench merge SHARD_DIRS...`` joins them (:mod:`prefbench.merge`). This module is the
partition the runner uses; the merge, which replays a run, lives beside it so that neither
imports the other's caller.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

from prefbench.data.model import Split
from prefbench.errors import UsageError
from prefbench.record import RunRecord, ShardInfo

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
