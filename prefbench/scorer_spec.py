"""A scorer, its model, its engine and their options, resolved once.

Every way of using a scorer (``prefbench run``, the Python API's ``load_scorer``, ``rank``,
``serve``, ``bench-generators``, Ray workers and shards) describes it with one
:class:`ScorerSpec` and builds it with :func:`build_scorer`, which resolves everything in one
place and returns a :class:`BuiltScorer`: the scorer, the record of what was asked and what it
resolved to (the run's ``scorer`` entry), the model's identity, and the model actually used
(a model alias's default when none was given). Nothing is passed back by mutating the request.

Resolution order: the registry entry (is the scorer known, installed, on an engine?), the
engine (``engine`` or the scorer's default), transport flags (``base_urls``, ``api_key_env``:
options of the openai engine), the model (given, or a model alias's default for this scorer on
``dataset``, with the options that come with that default there), a pinned name's implied
options, then ``rollouts`` and ``seed``. :func:`prefbench.registry.build` checks each option
against the scorer's or the engine's annotations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefbench.config_fields import option, positive_int
from prefbench.errors import UsageError
from prefbench.provenance import portable_values


def parse_params(items: list[str]) -> dict[str, Any]:
    """``-S key=value`` strings -> options (values parse as JSON when they can)."""
    from prefbench.options import parse_param

    return dict(parse_param(p) for p in items)


@dataclass(frozen=True)
class ScorerSpec:
    """What to build. ``dataset``: the dataset it will score, where there is one (a model alias
    may offer a default model for a scorer on some datasets; None in the API, ``rank`` and
    ``serve``)."""

    name: str = option(help="scorer name (see `prefbench list`)", flag="--scorer", dest="scorer", required=True)
    model: str | None = option(None, help="model path, id or alias; omitted: the scorer's bundled demo checkpoint, "
                                          "if any")
    engine: str | None = option(None, metavar="NAME", aliases=("--backend",),
                                help="VLM scorers: the engine that runs the model: transformers (default, loads "
                                     "--model), openai (an OpenAI-compatible server such as vLLM serving --model "
                                     "NAME), vllm (in-process vLLM, in the vLLM env) or a plugin engine; its options "
                                     "go in -S (see `prefbench list`). --backend is the old name")
    #: the scorer's and the engine's options (``-S key=value``), as the user gave them
    params: dict[str, Any] = option(flag="-S", dest="S", repeat=True, metavar="KEY=VALUE", default_factory=dict,
                                    convert=parse_params,
                                    help="scorer or engine option; repeatable (values parse as JSON when they can)")
    rollouts: int | None = option(None, type=positive_int, help="Mean@k: reasoning rollouts per image (VLM scorers)")
    seed: int = option(0, type=int, help="scorer seed")
    base_urls: tuple[str, ...] = option(flag="--base-url", dest="base_url", repeat=True, metavar="URL",
                                        default_factory=tuple,
                                        help="--engine openai: server URL such as http://127.0.0.1:8000/v1; repeat to "
                                             "spread requests")
    api_key_env: str | None = option(None, metavar="VAR", help="--engine openai: environment variable holding the "
                                                               "API key (default OPENAI_API_KEY)")
    dataset: str | None = None

    @classmethod
    def for_run(cls, cfg) -> ScorerSpec:
        """The scorer request of a run's config (:class:`prefbench.runner.RunConfig`)."""
        return cls(cfg.scorer, cfg.model, cfg.engine, dict(cfg.params), cfg.rollouts, cfg.seed,
                   tuple(cfg.base_urls), cfg.api_key_env, cfg.dataset)


@dataclass
class BuiltScorer:
    """A built scorer (weights not loaded yet) and what it resolved to."""

    scorer: Any
    #: the run record's ``scorer`` entry: name, target, source, passed and resolved options, engine
    record: dict[str, Any]
    #: the model's portable identity (id, revision)
    model_info: dict[str, Any]
    #: the model the scorer uses: the spec's, or a model alias's default (None: the scorer takes none)
    model: str | None
    #: True when ``model`` is a default the user did not ask for
    model_defaulted: bool = False


def build_scorer(spec: ScorerSpec) -> BuiltScorer:
    """Resolve ``spec`` and build its scorer (no weights are loaded: that is the scorer's ``setup()``)."""
    from prefbench.models import default_choice, resolve_model
    from prefbench.registry import build, engine_options, load_engine, lookup, options

    params = dict(spec.params)
    cls = lookup(spec.name).load()
    accepted = options(cls)
    uses_engine = bool(getattr(cls, "uses_engine", False))
    if spec.engine and not uses_engine:
        raise UsageError(f"scorer {spec.name!r} runs in-process only; --engine applies to the VLM scorers")
    engine_name = (spec.engine or getattr(cls, "default_engine", None)) if uses_engine else None
    for flag, key, value in (("--base-url", "base_url", list(spec.base_urls)), ("--api-key-env", "api_key_env",
                                                                                 spec.api_key_env)):
        if not value:
            continue
        if engine_name is None or key not in engine_options(engine_name):
            raise UsageError(f"{flag} is an option of the openai engine: add --engine openai")
        params[key] = value
    in_process = bool(engine_name is None or load_engine(engine_name).in_process)
    model, defaulted = spec.model, False
    if model is None and "model" in accepted and "model" not in params and in_process:
        model, with_default = default_choice(spec.name, spec.dataset)
        defaulted = model is not None
        params = {**with_default, **params}
    aliased = resolve_model(model, spec.name)
    for key, value in (aliased.params.items() if aliased else ()):  # a pinned name's options (HPSv2: v2.0)
        params.setdefault(key, value)
    for key, value in (("model", str(aliased.path) if aliased else model), ("rollouts", spec.rollouts)):
        if value is None:
            continue
        if key not in accepted:
            raise UsageError(f"scorer {spec.name!r} does not take --{key}")
        params[key] = value
    if "seed" in accepted:
        params.setdefault("seed", spec.seed)
    scorer, record = build(spec.name, params, spec.engine)
    # record portable forms (an aliased checkpoint's id, paths relative to the current directory),
    # never this machine's paths: they enter the config hash and the run folder's name
    for key in ("passed", "resolved"):
        record[key] = portable_values(record[key])
    return BuiltScorer(scorer, record, model_record(scorer, aliased), model, defaulted)


def model_record(scorer, aliased=None) -> dict:
    """The scorer's model id and revision; a model alias's checkpoint gets its portable id
    (``prefbench-demo/<name>``) and its weights' hash as revision, so that runs, config hashes
    and CI baselines match across machines."""
    info = portable_values(dict(scorer.model_info()))
    if aliased is not None:
        info.update({"id": aliased.id, "revision": aliased.revision})
    return info


def scorer_identity(spec: dict, scorer, model_info: dict) -> dict:
    """What of a built scorer changes its scores: name, options, model, prompt templates and the
    engine unless it is the default transformers one (whose runs predate engines). Transport
    options (server URLs, concurrency, timeouts) change how scores are fetched, not what they
    are: a run resumes against another set of servers."""
    transport = set(getattr(scorer, "transport_params", ()))
    return {
        "scorer": spec["name"],
        "params": {k: v for k, v in spec["resolved"].items() if k not in transport},
        "model": model_info,
        "prompt_template_hash": scorer.prompt_template_hash(),
        **({"engine": spec["engine"]} if spec.get("engine") not in (None, "transformers") else {}),
    }
