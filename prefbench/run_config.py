"""What one scoring run is asked to do: :class:`RunConfig`, every ``prefbench run`` option with
its default and help (the CLI builds its flags from these fields, :mod:`prefbench.config_fields`);
the scorer's own options are declared once on :class:`prefbench.scorer_spec.ScorerSpec` and shared
here with ``same_as``. :mod:`prefbench.runner` runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefbench.config_fields import (
    OUTSIDE_HELP,
    cli_fields,
    from_args,
    non_negative_float,
    option,
    positive_int,
    same_as,
)
from prefbench.metrics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED
from prefbench.scorer_spec import ScorerSpec


def _shard(text: str | None):
    from prefbench.shards import parse_shard

    return parse_shard(text) if text is not None else None


@dataclass
class RunConfig:
    scorer: str = same_as(ScorerSpec, "name", required=False, help=(
        "scorer name (see `prefbench list`); omitted: every bundled demo scorer on the demo test split, printed as "
        "a leaderboard; a,b (and lists in --dataset, --split): every combination, one run each"))
    model: str | None = same_as(ScorerSpec, "model")
    dataset: str = option("demo", help="dataset name, or names a,b")
    split: str | None = option(None, help="split, or splits a,b (default: the dataset's test split)")
    data_dir: str | None = option(None, help="folder holding the dataset's files")
    limit: int | None = option(None, type=positive_int, help="score only the first N items")
    rollouts: int | None = same_as(ScorerSpec, "rollouts")
    seed: int = same_as(ScorerSpec, "seed")
    out: str | None = option(None, help="run folder (default: results/<dataset>-<split>/<scorer>-...-<config hash>)")
    params: dict[str, Any] = same_as(ScorerSpec, "params")
    convention: str | None = option(None, metavar="NAME",
                                    help="override the split's official accuracy convention (built-in: imagereward, "
                                         "hpdv2, pickapic, ...; plugins too: see `prefbench list`)")
    tie_threshold: float = option(0.0, type=non_negative_float,
                                  help="pickapic: predict a tie when |p0 - p1| <= this (tune on validation_unique)")
    bootstrap_resamples: int = option(DEFAULT_RESAMPLES, type=positive_int, help="bootstrap resamples")
    bootstrap_seed: int = DEFAULT_SEED
    results_root: str = option("results", flag="--results", dest="results", help="root for default run folders")
    progress: bool = option(True, flag="--no-progress", help="no progress bar")
    batch_size: int | None = option(None, type=positive_int, help="items per scorer batch (default: the scorer's)")
    #: None = the scorer's default engine (transformers for the VLM scorers); "openai" =
    #: OpenAI-compatible servers at base_urls; "vllm" = in-process vLLM; or a plugin engine
    engine: str | None = same_as(ScorerSpec, "engine")
    base_urls: list[str] = same_as(ScorerSpec, "base_urls", default_factory=list)
    api_key_env: str | None = same_as(ScorerSpec, "api_key_env")
    #: read image paths that resolve outside the data dir (off: such an image gets status error)
    allow_outside_data_dir: bool = option(False, help=OUTSIDE_HELP)
    #: another process writing the same run folder: wait for it (default: refuse, exit 2)
    wait: bool = option(False, help="if another prefbench process is writing the same run folder, wait for it "
                                    "(default: exit 2)")
    #: (I, N): score only shard I of a deterministic N-way partition of the items, into a shard
    #: folder of its own that ``prefbench merge`` joins with the others (prefbench.shards)
    shard: tuple[int, int] | None = option(None, metavar="I/N", convert=_shard,
                                           help="score only shard I (from 0) of a deterministic N-way partition of "
                                                "the items, into a shard folder of its own; `prefbench merge` joins "
                                                "the N shards into one run (docs/scale.md)")
    #: who scores the todo list: "local" (this process) or "ray" (actors on a Ray cluster,
    #: prefbench.ray_executor); not part of the run's identity, so a run resumes under either
    executor: str = option("local", choices=("local", "ray"), show_default=False,
                           help="who scores: this process (local, default) or actors on a Ray cluster (ray extra; "
                                "docs/scale.md)")
    ray_address: str | None = option(None, metavar="ADDR",
                                     help="--executor ray: the cluster (default: start a local one)")
    workers: int = option(2, type=positive_int, help="--executor ray: actors, each with the model")
    worker_gpus: float = option(0.0, type=float, show_default=False, help="--executor ray: GPUs per actor (default 0)")
    worker_cpus: float = option(1.0, type=float, help="--executor ray: CPUs per actor")

    @classmethod
    def from_args(cls, args, **overrides) -> RunConfig:
        """The run ``prefbench run``'s parsed options describe."""
        return cls(**{**from_args(cls, args, cli_fields(cls)), **overrides})


#: the flags of RunConfig that ``evaluate`` shares (it scores a file: no scorer, no run folder)
METRIC_OPTIONS = ("convention", "tie_threshold", "bootstrap_resamples")
