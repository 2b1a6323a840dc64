"""The run record (``run.json``) and the sample row (one line of ``samples.jsonl``) as types.

A :class:`RunRecord` is what a run folder says of itself: what was scored (scorer, model, data,
prompts), how (seeds, options, provenance), and what came out (metrics, counts, throughput). Every
field has a docstring (``RunRecord.docs()`` lists them). The store reads and writes records
(:func:`prefbench.store.read_record`, :func:`prefbench.store.write_record`); code elsewhere reads
typed attributes (``rec.metrics.accuracy``, ``rec.dataset.split``) instead of string keys.

The JSON form is the one prefbench has always written. A record keeps its keys in the order they
were set or read and keeps keys it does not know, so reading a ``run.json`` and writing it back
gives the same bytes. A key that is absent reads as the field's default, which is how an older
record upgrades on read: no ``kind`` is a scoring run, no ``samples_sha256`` means only the size
of ``samples.jsonl`` was recorded, no ``scorer.engine`` is the default engine; the file on disk is
not rewritten. A record with a newer ``schema_version`` than :data:`RUN_SCHEMA_VERSION` is refused
by the store.

For code that still reads records as dicts (and for users of ``prefbench.runner.run``'s return
value), a record also answers ``rec["metrics"]["accuracy"]``: the JSON form, read only.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from typing import Any, ClassVar

from prefbench.errors import DataError

#: the schema version this prefbench writes (and the newest it reads)
RUN_SCHEMA_VERSION = 1
#: the kinds of run a run folder can hold
KINDS = ("scoring", "shard", "generators")


def doc(text: str, default: Any = None) -> Any:
    """A record field: its one-line documentation, and the value it reads as when the key is absent."""
    return dataclasses.field(default=default, metadata={"doc": text})


class Block:
    """A JSON object with typed fields.

    Keys are kept in the order they were set (as a dict keeps them); a field that was never set
    reads as its default and is not written; keys a block does not know are kept in ``extra`` and
    written back where they were. Subclasses are ``@dataclasses.dataclass(init=False, eq=False,
    repr=False)`` classes whose fields are declared with :func:`doc`.
    """

    _types: ClassVar[dict[str, type[Block]]]

    def __init__(self, **values: Any):
        object.__setattr__(self, "_keys", [])
        object.__setattr__(self, "extra", {})
        for key, value in values.items():
            setattr(self, key, value)

    # -- fields ------------------------------------------------------------------------------
    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def docs(cls) -> dict[str, str]:
        """``{field: its documentation}``, in declaration order."""
        return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}

    @classmethod
    def _block_types(cls) -> dict[str, type[Block]]:
        if "_types" not in cls.__dict__:
            hints = typing.get_type_hints(cls, globalns=globals())
            found = {}
            for name in cls.field_names():
                for arg in typing.get_args(hints[name]) or (hints[name],):
                    if isinstance(arg, type) and issubclass(arg, Block):
                        found[name] = arg
            cls._types = found
        return cls._types

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.field_names():
            raise AttributeError(f"{type(self).__name__} has no field {name!r} (unknown keys go through rec[key])")
        types = self._block_types()
        if name in types and isinstance(value, dict):  # a nested block given as its JSON object
            value = types[name].from_json(value, f"{name}.")
        object.__setattr__(self, name, value)
        if name not in self._keys:
            self._keys.append(name)

    def __delattr__(self, name: str) -> None:
        if name in self.__dict__:
            object.__delattr__(self, name)
        if name in self._keys:
            self._keys.remove(name)

    def has(self, key: str) -> bool:
        """Whether ``key`` is in the JSON form (set, or read from a file)."""
        return key in self._keys

    def update(self, values: dict[str, Any]) -> None:
        """Set several keys in order (fields by attribute, others as extra keys)."""
        for key, value in values.items():
            self[key] = value

    # -- JSON --------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, data: Any, where: str = "") -> Block:
        """Build from a parsed JSON object; a nested block that is not an object is a
        :class:`DataError` naming the field (``where`` prefixes the name)."""
        if not isinstance(data, dict):
            raise DataError(f"field {where.rstrip('.') or 'record'!r} must be an object")
        obj = cls()
        types = cls._block_types()
        for key, value in data.items():
            if key in types and value is not None:
                value = types[key].from_json(value, f"{where}{key}.")
            obj[key] = value
        return obj

    def to_json(self) -> dict[str, Any]:
        """The JSON object: every key set or read, in order; nested blocks as objects."""
        out: dict[str, Any] = {}
        for key in self._keys:
            value = getattr(self, key) if key in self.field_names() else self.extra[key]
            out[key] = value.to_json() if isinstance(value, Block) else value
        return out

    # -- the read-only mapping view (dict-style readers, and the API's users) -----------------
    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        value = getattr(self, key) if key in self.field_names() else self.extra[key]
        return value.to_json() if isinstance(value, Block) else value

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self.field_names():
            setattr(self, key, value)
        else:
            self.extra[key] = value
            if key not in self._keys:
                self._keys.append(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self._keys else default

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> list[str]:
        return list(self._keys)

    def items(self) -> list[tuple[str, Any]]:
        return [(key, self[key]) for key in self._keys]

    def values(self) -> list[Any]:
        return [self[key] for key in self._keys]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Block):
            return type(self) is type(other) and self.to_json() == other.to_json()
        if isinstance(other, dict):
            return self.to_json() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._keys
                          if k in self.field_names() and not isinstance(getattr(self, k), (dict, list)))
        return f"{type(self).__name__}({shown})"


def block(cls):
    """Declare a :class:`Block` subclass (a dataclass for its fields' metadata, with Block's
    own constructor, equality and repr)."""
    return dataclasses.dataclass(init=False, eq=False, repr=False)(cls)


# -- provenance: shared by runs and training records ---------------------------------------------
@block
class GitInfo(Block):
    """The commit of the prefbench source tree that made a record."""

    commit: str | None = doc("the commit's sha (None outside a git checkout)")
    dirty: bool | None = doc("whether tracked files differed from the commit")


@block
class ModelInfo(Block):
    """The model a scorer ran (its own keys beyond these are kept)."""

    id: str | None = doc("the model's id: a hub id, a pinned name, prefbench-demo/<name> or a portable path")
    revision: str | None = doc("its revision: a hub commit, or a bundled checkpoint's weights hash")


@block
class ScorerInfo(Block):
    """Which scorer ran, with the options a user passed and those it resolved (enough to replay it)."""

    name: str | None = doc("the scorer's registry name")
    target: str | None = doc("its class as 'module:attr'")
    source: str | None = doc("'builtin' or the plugin distribution it came from")
    passed: dict | None = doc("the options the user passed")
    resolved: dict | None = doc("every option with its value after defaults (the run's identity reads these)")
    engine: str | None = doc("the engine a VLM scorer ran on (absent: its default engine)")


@block
class DatasetInfo(Block):
    """The data a run scored (for a generator run: the prompt set, as far as generic readers care)."""

    name: str | None = doc("the dataset's registry name ('generators' for a generator run)")
    split: str | None = doc("the split (a generator run: the prompt file's stem)")
    content_hash: str | None = doc("sha256 over the split's items and image bytes: runs pair only on equal hashes")
    n_items: int | None = doc("items scored (after --limit)")
    n_images: int | None = doc("images scored")
    source: str | None = doc("the annotation file, relative to the data dir (a generated dataset: its folder name)")
    data_dir: str | None = doc("the data dir in portable form (None for a generated dataset; absent in older runs)")
    note: str | None = doc("a caveat the dataset states about itself (shown under the report's table)")
    limit: int | None = doc("--limit: only the split's first N items were scored")
    allow_outside_data_dir: bool | None = doc("present (true) only when images outside the data dir were read")


@block
class Metrics(Block):
    """The run's metrics under its convention, with the cluster-bootstrap CI (other keys are kept)."""

    convention: str | None = doc("the official convention the accuracy follows")
    accuracy: float | None = doc("accuracy under the convention (None when nothing was scored)")
    ci_low: float | None = doc("lower end of the 95% cluster-bootstrap CI")
    ci_high: float | None = doc("upper end of the 95% cluster-bootstrap CI")
    n_prompts: int | None = doc("prompts (items) that entered the accuracy")
    n_pairs: int | None = doc("pairs (or rows) that entered the accuracy")
    n_images: int | None = doc("images of the split")
    n_missing_scores: int | None = doc("images without an ok score")
    bootstrap_resamples: int | None = doc("bootstrap resamples")
    bootstrap_seed: int | None = doc("bootstrap seed")
    kendall_tau_b: float | None = doc("mean per-item Kendall tau-b between scores and human ranks")
    spearman: float | None = doc("mean per-item Spearman correlation")
    n_items_correlation_undefined: int | None = doc("items where a rank correlation is undefined (constant ranks)")
    brier: float | None = doc("Brier score of the run's pairwise probabilities (anchor or sigma scorers)")
    ece: float | None = doc("expected calibration error of those probabilities")
    n_calibration_pairs: int | None = doc("pairs the calibration figures are computed over")


@block
class Counts(Block):
    """Images by status (a generator run has no ``forced``)."""

    ok: int | None = doc("images with a score")
    unparsed: int | None = doc("images whose answer could not be parsed (never folded into a score)")
    error: int | None = doc("images the scorer failed on")
    forced: int | None = doc("images whose answer was forced after the reasoning budget ran out")
    missing: int | None = doc("images without a row (an unfinished run)")


@block
class Throughput(Block):
    """This session's speed (a cached or resumed session keeps the last measured rates)."""

    images_scored_this_session: int | None = doc("images scored by the session that wrote the record")
    wall_s: float | None = doc("seconds spent scoring")
    images_per_s: float | None = doc("images per second of scoring")
    setup_s: float | None = doc("seconds spent loading the model (in-process runs)")
    generated_tokens: int | None = doc("tokens generated over the run's rows")
    generated_tokens_per_s: float | None = doc("generated tokens per second of this session's scoring")
    prompt_tokens: int | None = doc("prompt tokens over the run's rows")
    prompt_tokens_per_s: float | None = doc("prompt tokens per second")
    vision_tokens: int | None = doc("image tokens over the run's rows")
    vision_tokens_per_s: float | None = doc("image tokens per second")


@block
class ShardInfo(Block):
    """A shard's place in its partition and the configuration ``prefbench merge`` replays."""

    index: int | None = doc("this shard's index I (0 <= I < N)")
    count: int | None = doc("N, the number of shards")
    n_items: int | None = doc("items in this shard")
    item_ids_sha256: str | None = doc("sha256 of the JSON list of this shard's item ids")
    run_config: dict | None = doc("the RunConfig fields a merge replays")


@block
class RunRecord(Block):
    """``run.json``: one run folder's record."""

    schema_version: int | None = doc("the record's schema version (see RUN_SCHEMA_VERSION)")
    kind: str = doc("'scoring' (absent), 'shard' or 'generators'", default="scoring")
    status: str | None = doc("'running', 'interrupted', 'incomplete' or 'complete'")
    run_dir: str | None = doc("the run folder (portable); a cached answer says where the folder is now")
    config_hash: str | None = doc("sha256 of everything that changes the scores: the run folder's identity")
    created: str | None = doc("when the folder was first written (UTC, ISO 8601)")
    scorer: ScorerInfo | None = doc("the scorer and its options")
    model: ModelInfo | None = doc("the model the scorer ran")
    prompt_template_hash: str | None = doc("sha256 of the prompt templates (None for scorers without prompts)")
    prompts: dict | None = doc("generator runs: the prompt file (path, format, hashes, count)")
    images: dict | None = doc("generator runs: the images folder (path, hash, counts, files set aside)")
    dataset: DatasetInfo | None = doc("the data scored")
    seeds: dict | None = doc("the scorer's seed and the bootstrap's")
    pooled: bool | None = doc("generator runs: a pairwise scorer compared every generator's images of a prompt")
    mode: str | None = doc("generator runs: 'anchor' or 'round_robin' (pairwise scorers)")
    metric_options: dict | None = doc("convention, tie threshold and bootstrap options (a cached answer must match)")
    stat_options: dict | None = doc("generator runs: bootstrap options (a cached answer must match)")
    versions: dict | None = doc("Python, prefbench and the libraries in play")
    git: GitInfo | None = doc("the prefbench commit")
    command: list | None = doc("the command line, in portable form")
    shard: ShardInfo | None = doc("shards: the partition and the configuration to replay")
    executor: dict | None = doc("--executor ray: workers, resources, hosts, losses and retries")
    finished: str | None = doc("when the record was last finished (UTC, ISO 8601)")
    metrics: Metrics | None = doc("scoring runs: the metrics")
    generators: list | None = doc("generator runs: per-generator means with CIs")
    pairs: list | None = doc("generator runs: paired comparisons on shared prompts")
    stability: dict | None = doc("generator runs: rank stability over bootstrap resamples")
    counts: Counts | None = doc("images by status")
    n_prompts_scored: int | None = doc("generator runs: prompts with at least one scored image")
    prompts_without_images: int | None = doc("generator runs: prompts no generator has an image for")
    throughput: Throughput | None = doc("this session's speed and token totals")
    scorer_summary: dict | None = doc("what the scorer reports of itself (batches, engine, parameters, ...)")
    samples_bytes: int | None = doc("size of samples.jsonl when the record was written")
    samples_sha256: str | None = doc("its sha256 (absent in older runs: the size alone is checked)")
    per_prompt: dict | None = doc("per-prompt sufficient statistics (paired bootstraps read these)")
    reliability: list | None = doc("reliability-diagram bins of the calibration figures")
    accelerator: dict | None = doc("the GPUs this session scored on")
    cached: bool | None = doc("set on a returned record answered from the run folder (never written)")

    @classmethod
    def read(cls, data: Any) -> RunRecord:
        """A record from a parsed ``run.json`` (a :class:`DataError` for one that is not a record)."""
        if not isinstance(data, dict) or "schema_version" not in data:
            raise DataError("not a prefbench run record (no schema_version)")
        return typing.cast(RunRecord, cls.from_json(data))

    @property
    def newer_than_this(self) -> bool:
        """Whether a newer prefbench wrote this record (or its version is not a number)."""
        v = self.schema_version
        return isinstance(v, bool) or not isinstance(v, int) or v > RUN_SCHEMA_VERSION

    @property
    def complete(self) -> bool:
        return self.status == "complete"

    @property
    def model_id(self) -> str | None:
        return self.model.id if self.model is not None else None

    @property
    def scorer_name(self) -> str | None:
        return self.scorer.name if self.scorer is not None else None


@block
class SampleRow(Block):
    """One line of ``samples.jsonl``: one image's result (scoring and generator runs)."""

    item_id: str | int | None = doc("the item's id")
    image_index: int | None = doc("the image's index within the item")
    generator: str | None = doc("generator runs: the generator's folder name")
    prompt_id: str | None = doc("generator runs: the prompt's id")
    k: int | None = doc("generator runs: the image's number for its prompt")
    image: str | None = doc("the image's key (a path relative to the data dir or images folder)")
    score: float | None = doc("the score (higher = preferred); None unless status is ok")
    status: str | None = doc("'ok', 'unparsed' or 'error'")
    error: str | None = doc("why the image failed")
    prob: float | None = doc("pairwise scorers: P(image preferred over the anchor)")
    anchor_index: int | None = doc("pairwise scorers: the anchor's image index within the item")
    anchor_image: str | None = doc("generator runs: the anchor image's path (pooled groups have no item index)")
    order_probs: dict | None = doc("both_orders: P(image beats anchor) per presentation order")
    sigma: float | None = doc("scorers that give an uncertainty: the score's standard deviation")
    forced: bool | None = doc("the answer was forced after the reasoning budget ran out (written only when true)")
    generated_tokens: int | None = doc("tokens generated for the image")
    prompt_tokens: int | None = doc("prompt tokens for the image")
    vision_tokens: int | None = doc("image tokens for the image")
    retryable: bool | None = doc("a transient failure (server down, crashed batch): scored again on the next run")
    detail: dict | None = doc("traces: reasoning text, per-rollout scores, ...")

    #: typed fields that rows written before they existed kept inside ``detail``
    LEGACY_DETAIL_FIELDS: ClassVar[tuple[str, ...]] = ("prob", "anchor_index", "forced", "generated_tokens")

    @classmethod
    def read(cls, data: dict) -> SampleRow:
        """A row from a parsed line, upgraded: typed fields an older row kept in ``detail`` are lifted."""
        row = typing.cast(SampleRow, cls.from_json(data))
        if isinstance(row.detail, dict):
            for key in cls.LEGACY_DETAIL_FIELDS:
                if not row.has(key) and key in row.detail:
                    row[key] = row.detail[key]
        return row
