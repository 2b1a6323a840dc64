"""docs/development.md, "Adding one of each": a package written to tmp_path adds a scorer, a dataset,
a convention, an engine and a model family, each one module plus one entry-point line, and each
is found and used. No pip install: the package and its ``.dist-info`` (``entry_points.txt``) go on
``sys.path``, which is all ``importlib.metadata`` needs; CLI subprocesses get it through PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from tests.fixtures.cli import run_cli
from tests.fixtures.extras import requires_extra

MODULES = {
    "oneofeach/__init__.py": '"""prefbench plugins, one of each kind (tests/core/test_registry_one_of_each.py)."""\n',
    # a scorer: higher = redder
    "oneofeach/scorer.py": '''
from prefbench.scorers.base import ImageResult, Scorer


class Redness(Scorer):
    """the mean red channel of the image, in [0, 1]"""

    name = "redness"

    def __init__(self, *, seed: int = 0):
        super().__init__(seed=seed)

    def score_item(self, item, indices):
        images, failed = self.load_images(item, indices)
        return {k: failed.get(k) or ImageResult(images[k].convert("RGB").getpixel((0, 0))[0] / 255)
                for k in indices}
''',
    # a dataset: 4 prompts x 3 solid squares, the humans prefer the redder one
    "oneofeach/dataset.py": '''
import io

from prefbench.data import DatasetSpec
from prefbench.data.model import ImageRef, Item, Split

SPEC = DatasetSpec("squares", ("test",), "top1_hit", "oneofeach.dataset",
                   "4 prompts x 3 solid squares; the redder, the better", needs_data_dir=False)


def _png(red):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (red, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def load(split, data_dir=None, with_images=True):
    items = []
    for p in range(4):
        reds = [90 + 40 * p, 250 - 10 * p, 160]  # the best image moves: index 1, then 1, 1, 0
        order = sorted(range(3), key=lambda k: -reds[k])
        ranks = [order.index(k) + 1 for k in range(3)]
        refs = [ImageRef(f"sq/{p}_{k}.png", data=_png(r) if with_images else None) for k, r in enumerate(reds)]
        items.append(Item(f"sq-{p}", f"a red square, take {p}", refs, ranks))
    return Split("squares", split, "top1_hit", items, source="squares")
''',
    # a convention: is the scorer's top image the humans' top image?
    "oneofeach/convention.py": '''
import numpy as np

from prefbench.metrics.conventions import Convention


def _hit(d):
    if np.isnan(d.scores).any():
        return 0.0, 1.0, 1
    return float(d.ranks[int(np.argmax(d.scores))] == d.ranks.min()), 1.0, 1


TOP1 = Convention("top1_hit", "share of prompts whose top-scored image is a human-best one", per_item=_hit)
''',
    # an engine: answers every rating job with the candidate nearest the image's redness
    "oneofeach/engine.py": '''
from prefbench.engines.base import Engine, Rollout


class ReddestEngine(Engine):
    """rates an image by its redness, without a model"""

    name = "reddest"

    def __init__(self, *, model=None, sharpness: float = 4.0):
        super().__init__(model=model)
        self.sharpness = float(sharpness)

    def load(self, candidates, *args, **kwargs):
        self.candidates = list(candidates)

    def generate(self, jobs, spec, stats=None):
        out = []
        for job in jobs:
            red = job.images[-1].convert("RGB").getpixel((0, 0))[0] / 255
            target = red * (len(spec.candidates) - 1)
            logits = [-self.sharpness * abs(i - target) for i in range(len(spec.candidates))]
            pick = min(range(len(logits)), key=lambda i: -logits[i])
            text = "<think>red</think>\\n<answer>" + spec.candidates[pick] + ("</answer>" if spec.tail_tokens else "")
            out.append([Rollout(text=text, answer_logits=logits, answer_mass=1.0, generated_tokens=2)
                        for _ in range(spec.rows_per_job)])
        return out
''',
    # a model family: the profile of config.model_type "oneofeach_vl"
    "oneofeach/family.py": '''
from prefbench.engines.profiles import ModelProfile

PROFILE = ModelProfile("OneOfEach-VL", ("oneofeach_vl",), end_tokens=("<|end|>",),
                       image_kwargs=lambda n: {"max_pixels": n}, batching="concat")
''',
}

ENTRY_POINTS = """\
[prefbench.scorers]
redness = oneofeach.scorer:Redness

[prefbench.datasets]
squares = oneofeach.dataset:SPEC

[prefbench.conventions]
top1_hit = oneofeach.convention:TOP1
imagereward = oneofeach.convention:TOP1

[prefbench.engines]
reddest = oneofeach.engine:ReddestEngine

[prefbench.model_profiles]
oneofeach_vl = oneofeach.family:PROFILE
broken_vl = oneofeach.missing:PROFILE
"""


@pytest.fixture
def one_of_each(tmp_path, monkeypatch):
    """The package and its metadata in tmp_path/site, importable here and in CLI subprocesses."""
    site = tmp_path / "site"
    for rel, text in MODULES.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text.lstrip("\n"))
    info = site / "oneofeach-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: oneofeach\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))  # a new sys.path: every registry scans its group again
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    return site


def test_each_kind_is_found_with_its_source_and_a_clash_or_a_broken_one_warns(one_of_each):
    from prefbench.data import dataset_info
    from prefbench.engines.profiles import profile_for, registry
    from prefbench.metrics import conventions, lookup_convention
    from prefbench.registry import engine_entries, entries

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = {"scorer": entries()["redness"], "engine": engine_entries()["reddest"],
                 "model profile": registry().entries()["oneofeach_vl"]}
        rules = conventions()
        profiles = registry().entries()
    assert all(e.source == "plugin: oneofeach" for e in found.values()), found
    assert found["scorer"].description == "the mean red channel of the image, in [0, 1]"
    assert dataset_info("squares").source == "plugin: oneofeach"
    assert rules["top1_hit"].source == "plugin: oneofeach"
    assert lookup_convention("imagereward").source == "builtin"  # the built-in wins the clash
    messages = [str(w.message) for w in caught]
    assert any("plugin convention 'imagereward'" in m and "the built-in wins" in m for m in messages), messages
    assert any("could not load plugin model profile 'broken_vl'" in m for m in messages), messages
    assert "broken_vl" not in profiles and profile_for("broken_vl").family == "generic"


def test_the_dataset_loads_and_the_convention_computes(one_of_each):
    from prefbench.data import load_dataset
    from prefbench.metrics import ItemData, lookup_convention, per_prompt_data

    split = load_dataset("squares")
    assert [it.ranks for it in split.items][:2] == [[3, 1, 2], [3, 1, 2]]
    assert split.items[0].images[1].open().getpixel((0, 0)) == (250, 30, 30)
    rule = lookup_convention("top1_hit")
    datas = [ItemData(it.item_id, np.asarray(it.ranks, float), np.asarray(s, float))
             for it, s in zip(split.items, ([0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]))]
    stats = per_prompt_data(rule.name, datas)
    assert list(stats.num) == [1.0, 0.0, 1.0, 0.0] and stats.accuracy == 0.5


def test_the_scorer_scores_through_the_api_and_the_runner(one_of_each, tmp_path):
    import io

    from PIL import Image

    from prefbench.api import load_scorer

    def png(red):
        buf = io.BytesIO()
        Image.new("RGB", (8, 8), (red, 0, 0)).save(buf, format="PNG")
        return buf.getvalue()

    with load_scorer("redness") as scorer:
        assert scorer.score("a red square", [png(51), png(204)]) == pytest.approx([0.2, 0.8])
        assert scorer.rank("a red square", [png(51), png(204)]) == [2, 1]
    out = tmp_path / "run"
    proc = run_cli(["run", "--scorer", "redness", "--dataset", "squares", "--out", out, "--no-progress", "--json",
                    "--bootstrap-resamples", "100"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "run.json").read_text())
    # the dataset names its convention; the scorer is perfect under it
    assert rec["metrics"]["convention"] == "top1_hit" and rec["metrics"]["accuracy"] == 1.0
    assert rec["scorer"]["source"] == "plugin: oneofeach" and rec["counts"]["ok"] == 12


@requires_extra("vlm")  # the VLM scorer classes load only with it, whatever the engine
def test_the_engine_runs_a_vlm_scorer(one_of_each, tmp_path):
    out = tmp_path / "run"
    proc = run_cli(["run", "--scorer", "expected_rating", "--engine", "reddest", "--model", "no-model",
                    "--dataset", "squares", "--out", out, "--no-progress", "--json", "-S", "max_new_tokens=8",
                    "--bootstrap-resamples", "100"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rec = json.loads((out / "run.json").read_text())
    assert rec["scorer"]["engine"] == "reddest" and rec["counts"]["ok"] == 12
    assert rec["metrics"]["accuracy"] == 1.0  # expected ratings follow redness
    proc = run_cli(["run", "--scorer", "expected_rating", "--engine", "redest", "--model", "m", "--dataset",
                    "squares", "--out", tmp_path / "r2"], cwd=tmp_path)
    assert proc.returncode == 2 and "unknown engine 'redest'. Did you mean: reddest?" in proc.stderr


def test_the_model_family_is_what_an_engine_finds_for_a_checkpoint(one_of_each, tmp_path):
    from prefbench.engines.profiles import model_type_of, profile_for

    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model_type": "oneofeach_vl"}))
    profile = profile_for(model_type_of(str(checkpoint)))  # what the transformers and vllm engines do
    assert profile.family == "OneOfEach-VL" and profile.batching == "concat"
    assert profile.processor_kwargs(4096) == {"max_pixels": 4096}


def test_one_unknown_name_error_for_every_kind(one_of_each):
    from prefbench.data import dataset_info
    from prefbench.engines.profiles import registry as profiles
    from prefbench.errors import UnknownNameError
    from prefbench.judges import lookup as judge
    from prefbench.metrics import lookup_convention
    from prefbench.models import registry as aliases
    from prefbench.registry import ENGINES, SCORERS

    for kind, get, typo, close in [("scorer", SCORERS.get, "rednes", "redness"),
                                   ("engine", ENGINES.get, "reddst", "reddest"),
                                   ("dataset", dataset_info, "squars", "squares"),
                                   ("convention", lookup_convention, "top1_hti", "top1_hit"),
                                   ("model alias", aliases().get, "HPSv2.2", "HPSv2.1"),
                                   ("model profile", profiles().get, "oneofeach_v", "oneofeach_vl"),
                                   ("judge protocol", judge, "mmrb", "mmrb2")]:
        with pytest.raises(UnknownNameError, match=f"unknown {kind} '{typo}'. Did you mean: .*{close}") as err:
            get(typo)
        assert err.value.kind == kind and close in err.value.close
