"""``hpsv3``: the prompt source (a stand-in wheel served from 127.0.0.1 at the pinned files-host
path, checked by sha256, cached; the offline message), the official-checkpoint key mapping, the
scorer on the tiny random checkpoint (fixed pixel budget, one <|Reward|> per sequence, batch
invariance, sigma typed), and the scorer through ``prefbench run`` (demo, an HPDv3 fixture),
``rank``, ``serve``, the API and ``bench-generators``. Parity with the official package:
tests/scorers/test_hpsv3_parity.py."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from prefbench.errors import DataError, MissingDataError
from prefbench.scorers.hpsv3.prompt import HPSV3_WHEEL, WheelSource, cached_wheel, load_prompt
from tests.fixtures.benchmarks import write_hpdv3
from tests.fixtures.cli import run_cli
from tests.fixtures.extras import requires_extra
from tests.fixtures.hpsv3 import MEMBER, STAND_IN, stand_in_wheel
from tests.fixtures.serve import ServerProcess, b64, png

STAND_IN_INSTRUCTION = ("\nYou are tasked with evaluating a generated image: a stand-in instruction for prefbench's "
                        "tests.\nRate it from 0 to 10.\nTextual prompt - {text_prompt}\n\n\n")
STAND_IN_SUFFIX = "\nPlease provide the overall ratings of this image: <|Reward|>\n\nEND\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- the prompt source ------------------------------------------------------------------------
def test_a_pinned_wheel_is_fetched_checked_cached_and_its_literals_read(files_host, monkeypatch):
    data = stand_in_wheel()
    src = WheelSource("packages/ab/cd/hpsv3-9.9.9-py3-none-any.whl", _sha(data), MEMBER, _sha(STAND_IN.encode()))
    (files_host / "packages/ab/cd").mkdir(parents=True)
    (files_host / src.path).write_bytes(data)
    prompt = load_prompt(src=src)
    assert (prompt.instruction, prompt.suffix) == (STAND_IN_INSTRUCTION, STAND_IN_SUFFIX)
    # str.format as the official code: a brace in the user's prompt stays as it is
    assert prompt.text("a {cat}") == STAND_IN_INSTRUCTION.replace("{text_prompt}", "a {cat}") + STAND_IN_SUFFIX
    assert prompt.record["source"] == "pinned" and prompt.record["sha256"] == src.sha256
    assert prompt.record["url"] == src.url() and src.url().startswith("http://127.0.0.1:")
    assert cached_wheel(src).read_bytes() == data
    monkeypatch.setenv("PREFBENCH_PYPI_FILES", "http://127.0.0.1:9")  # the host is gone: the cache serves
    assert load_prompt(src=src).record["text_sha256"] == prompt.record["text_sha256"]
    # a cached copy that no longer matches is refused and removed
    cached_wheel(src).write_bytes(data + b"x")
    with pytest.raises(DataError, match="pinned"):
        load_prompt(src=src)
    assert not cached_wheel(src).exists()


def test_the_pinned_wheel_refuses_another_file_at_its_path(files_host):
    assert HPSV3_WHEEL.url().endswith("/packages/20/ed/6feb979b0086f57dc7a8b545693e1dbeffd60c8d942971e0445c65fcf438/"
                                      "hpsv3-1.0.0-py3-none-any.whl")
    where = files_host / HPSV3_WHEEL.path
    where.parent.mkdir(parents=True)
    where.write_bytes(stand_in_wheel())
    with pytest.raises(DataError, match=HPSV3_WHEEL.sha256):
        load_prompt()
    assert not cached_wheel(HPSV3_WHEEL).exists()


def test_offline_the_error_names_the_url_the_sha256_and_where_to_put_the_wheel(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFBENCH_PYPI_FILES", "http://127.0.0.1:9")
    monkeypatch.setenv("PREFBENCH_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingDataError) as err:
        load_prompt()
    msg = str(err.value)
    assert HPSV3_WHEEL.url() in msg and HPSV3_WHEEL.sha256 in msg and str(cached_wheel(HPSV3_WHEEL)) in msg
    assert "pip download --no-deps hpsv3==1.0.0" in msg and "prompt_file" in msg


def test_prompt_file_a_python_file_or_a_wheel_and_what_is_refused(tmp_path):
    py = tmp_path / "collator.py"
    py.write_text(STAND_IN)
    wheel = tmp_path / "hpsv3.whl"
    wheel.write_bytes(stand_in_wheel())
    for path in (py, wheel):
        prompt = load_prompt(path)
        assert (prompt.instruction, prompt.suffix) == (STAND_IN_INSTRUCTION, STAND_IN_SUFFIX)
        assert prompt.record["source"] == "file" and prompt.record["sha256"] == _sha(path.read_bytes())
    bad = tmp_path / "bad.py"
    bad.write_text(STAND_IN.replace("{text_prompt}", "{prompt}"))
    with pytest.raises(DataError, match="text_prompt"):
        load_prompt(bad)
    bad.write_text(STAND_IN.replace("<|Reward|>", ""))
    with pytest.raises(DataError, match="no string literal"):
        load_prompt(bad)
    with pytest.raises(DataError, match="not found"):
        load_prompt(tmp_path / "missing.py")


def test_official_key_names_map_both_ways():
    from prefbench.scorers.hpsv3.model import map_official_keys, official_keys

    official = {"model.embed_tokens.weight": 1, "model.layers.0.mlp.up_proj.weight": 2, "model.norm.weight": 3,
                "visual.patch_embed.proj.weight": 4, "visual.merger.mlp.0.weight": 5, "lm_head.weight": 6,
                "rm_head.0.weight": 7, "rm_head.5.bias": 8}
    body, head, ignored = map_official_keys(official)
    assert body == {"language_model.embed_tokens.weight": 1, "language_model.layers.0.mlp.up_proj.weight": 2,
                    "language_model.norm.weight": 3, "visual.patch_embed.proj.weight": 4,
                    "visual.merger.mlp.0.weight": 5}
    assert head == {"0.weight": 7, "5.bias": 8} and ignored == ["lm_head.weight"]
    assert official_keys(body, head, 6) == official


# -- the scorer on the tiny checkpoint --------------------------------------------------------
@pytest.fixture(scope="module")
def scorer(tiny_hpsv3_dir, hpsv3_prompt_file):
    from prefbench.scorers.hpsv3.scorer import HPSv3Scorer

    s = HPSv3Scorer(model=str(tiny_hpsv3_dir), prompt_file=str(hpsv3_prompt_file), device="cpu", image_batch=3)
    s.setup()
    yield s
    s.close()


def _images():
    from PIL import Image

    return [Image.new("RGB", (512, 512), (220, 30, 30)), Image.new("RGB", (300, 200), (30, 30, 220)),
            Image.new("L", (40, 90), 128)]


def test_fixed_pixel_budget_and_one_reward_token_per_sequence(scorer):
    from prefbench.scorers.hpsv3.scorer import PIXELS, resize_for_hpsv3

    for im in _images():
        out = resize_for_hpsv3(im)
        assert out.mode == "RGB" and out.width % 28 == 0 and out.height % 28 == 0
        assert abs(out.width * out.height - PIXELS) / PIXELS < 0.15  # min = max: every image near 200704 pixels
    assert resize_for_hpsv3(_images()[0]).size == (448, 448)
    proc = scorer._processor
    text = proc.apply_chat_template(scorer.messages("two red circles"), tokenize=False, add_generation_prompt=True)
    assert text.index("<|image_pad|>") < text.index("Textual prompt - two red circles") < text.index("<|Reward|>")
    assert text.rstrip().endswith("<|im_start|>assistant")
    batch = proc(text=[text], images=[resize_for_hpsv3(_images()[0])], return_tensors="pt")
    ids = batch["input_ids"][0].tolist()
    assert ids.count(scorer._net.reward_token_id) == 1
    assert batch["image_grid_thw"][0].tolist() == [1, 32, 32]  # 448 / 14 patches a side
    assert ids.count(scorer._net.body.config.image_token_id) == 256  # merged 2 x 2: HPSv3's 256 visual tokens


def test_batched_equals_one_at_a_time_and_sigma_is_exp_of_the_second_output(scorer):
    images, prompts = _images(), ["a red square", "a blue thing", "grey"]
    together = scorer.forward(images, prompts)
    alone = [scorer.forward([im], [p])[0] for im, p in zip(images, prompts, strict=True)]
    for (mu_a, ls_a), (mu_b, ls_b) in zip(together, alone, strict=True):
        assert mu_a == pytest.approx(mu_b, abs=1e-5) and ls_a == pytest.approx(ls_b, abs=1e-5)
    assert len({round(mu, 4) for mu, _ in together}) == 3  # images and prompts move the score
    assert scorer.forward(images[:1], ["another prompt"])[0][0] != pytest.approx(together[0][0], abs=1e-4)

    from PIL import Image

    item = _item(images + [b"not an image", Image.new("RGB", (1, 300))], "a red square")
    result = scorer.score_batch([(item, [0, 1, 2, 3, 4])])[0]
    assert [result[k].status for k in range(5)] == ["ok", "ok", "ok", "error", "error"]
    assert "aspect ratio" in result[4].error
    assert result[0].score == pytest.approx(together[0][0], abs=1e-5)
    assert result[0].sigma == pytest.approx(math.exp(together[0][1]), rel=1e-5) and result[0].sigma > 0
    assert result[0].typed_fields()["sigma"] == result[0].sigma and "sigma" not in result[0].detail


def _item(images, prompt):
    import io

    from prefbench.data.model import ImageRef, Item

    refs = []
    for k, im in enumerate(images):
        data = im
        if not isinstance(im, bytes):
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            data = buf.getvalue()
        refs.append(ImageRef(key=f"img{k}", data=data))
    return Item(item_id="x", prompt=prompt, images=refs, ranks=list(range(1, len(refs) + 1)))


def test_a_checkpoint_alone_needs_base_and_base_gives_config_and_processor_only(scorer, tiny_hpsv3_dir,
                                                                                 hpsv3_prompt_file, tmp_path,
                                                                                 monkeypatch):
    import shutil

    from prefbench.scorers.hpsv3.scorer import HPSv3Scorer
    from prefbench.weights import WeightsError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tiny_hpsv3_dir / "HPSv3.safetensors", alone)
    with pytest.raises(WeightsError, match=r"not its weights.*-S base=DIR"):
        HPSv3Scorer(model=str(alone), prompt_file=str(hpsv3_prompt_file), device="cpu").setup()
    base = tmp_path / "base"  # the base folder without its model.safetensors
    shutil.copytree(tiny_hpsv3_dir, base, ignore=shutil.ignore_patterns("*.safetensors"))
    other = HPSv3Scorer(model=str(alone / "HPSv3.safetensors"), base=str(base), prompt_file=str(hpsv3_prompt_file),
                        device="cpu")
    assert other.model_info()["base"] == str(base)
    images = _images()[:2]
    got, want = other.forward(images, ["a", "b"]), scorer.forward(images, ["a", "b"])
    assert [v for pair in got for v in pair] == pytest.approx([v for pair in want for v in pair], abs=1e-6)


# -- through the commands ---------------------------------------------------------------------
def _rows(run_dir):
    return [json.loads(x) for x in (run_dir / "samples.jsonl").read_text().splitlines()]


@requires_extra("vlm")
def test_run_on_the_demo_and_an_hpdv3_fixture_records_sigma(tiny_hpsv3_dir, hpsv3_prompt_file, tmp_path):
    opts = ["--scorer", "hpsv3", "--model", tiny_hpsv3_dir, "-S", f"prompt_file={hpsv3_prompt_file}", "--no-progress"]
    env = {"HF_HUB_OFFLINE": "1", "PREFBENCH_CACHE": str(tmp_path / "cache")}
    proc = run_cli(["run", *opts, "--dataset", "demo", "--limit", "3", "--out", tmp_path / "demo"], env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(tmp_path / "demo")
    assert rows and all(r["status"] == "ok" and r["sigma"] > 0 and math.isfinite(r["score"]) for r in rows)
    rec = json.loads((tmp_path / "demo" / "run.json").read_text())
    assert rec["scorer"]["resolved"]["max_pixels"] == 200704 and rec["model"]["file"] == "HPSv3.safetensors"
    assert rec["prompt_template_hash"] == load_prompt(hpsv3_prompt_file).record["text_sha256"]
    assert rec["scorer_summary"]["prompt_source"]["source"] == "file"

    write_hpdv3(tmp_path / "hpdv3", n=4)
    proc = run_cli(["run", *opts, "--dataset", "hpdv3", "--data-dir", tmp_path / "hpdv3", "--out", tmp_path / "h"],
                   env_extra=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(tmp_path / "h")
    assert len(rows) == 8 and all(r["status"] == "ok" and r["sigma"] > 0 for r in rows)
    rec = json.loads((tmp_path / "h" / "run.json").read_text())
    assert rec["counts"]["ok"] == 8 and 0 <= rec["metrics"]["accuracy"] <= 1
    # calibration from sigma: P(path1 beats path2) = Phi((mu1 - mu2) / sqrt(s1^2 + s2^2)); path1 is preferred
    by = {(r["item_id"], r["image_index"]): r for r in rows}
    probs = []
    for item_id in sorted({r["item_id"] for r in rows}):
        a, b = by[(item_id, 0)], by[(item_id, 1)]
        z = (a["score"] - b["score"]) / math.hypot(a["sigma"], b["sigma"])
        probs.append(0.5 * (1 + math.erf(z / math.sqrt(2))))
    assert rec["metrics"]["n_calibration_pairs"] == 4
    assert rec["metrics"]["brier"] == pytest.approx(sum((1 - p) ** 2 for p in probs) / 4, abs=1e-12)


@requires_extra("vlm")
def test_rank_orders_by_mu(tiny_hpsv3_dir, hpsv3_prompt_file, tmp_path):
    paths = []
    for k in range(3):
        paths.append(tmp_path / f"{k}.png")
        paths[-1].write_bytes(png(k + 1, size=64))
    proc = run_cli(["rank", "--scorer", "hpsv3", "--model", tiny_hpsv3_dir, "-S", f"prompt_file={hpsv3_prompt_file}",
                    "--prompt", "two red circles", *paths, "--json"], env_extra={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)["ranking"]
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and [r["rank"] for r in rows] == [1, 2, 3]
    assert all(r["sigma"] > 0 for r in rows)


@requires_extra("serve")
@requires_extra("vlm")
def test_serve_returns_mu_and_sigma_equal_to_the_api(tiny_hpsv3_dir, hpsv3_prompt_file, tmp_path):
    import httpx

    from prefbench.api import load_scorer

    server = ServerProcess(["--scorer", "hpsv3", "--model", tiny_hpsv3_dir, "-S", f"prompt_file={hpsv3_prompt_file}"],
                           tmp_path / "server.log", {"HF_HUB_OFFLINE": "1", "PREFBENCH_CACHE": str(tmp_path / "c")})
    try:
        r = httpx.post(server.url + "/v1/score", timeout=120,
                       json={"prompt": "a cat", "images": [b64(png(1, size=64)), b64(png(2, size=64))]})
        assert r.status_code == 200, r.text
        body = r.json()
        r = httpx.post(server.url + "/v1/score", timeout=120, json={
            "items": [{"prompt": "a cat", "images": [b64(png(1, size=64)), "bm90IGFuIGltYWdl"]}],
            "return": ["score", "sigma"]})
        assert r.status_code == 200, r.text
        asked = r.json()["items"][0]
        bad = httpx.post(server.url + "/v1/score", timeout=30,
                         json={"prompt": "a cat", "images": [b64(png(1))], "return": ["score", "mu"]})
    finally:
        server.stop()
    assert body["statuses"] == ["ok", "ok"] and all(d["sigma"] > 0 for d in body["details"])
    assert "sigmas" not in body  # only when asked
    assert asked["statuses"] == ["ok", "error"] and asked["sigmas"][1] is None
    assert asked["sigmas"][0] == pytest.approx(body["details"][0]["sigma"], rel=1e-5)
    assert asked["scores"][0] == pytest.approx(body["scores"][0], abs=1e-5)
    assert bad.status_code == 400 and "'mu'" in bad.json()["error"]
    with load_scorer("hpsv3", model=str(tiny_hpsv3_dir), prompt_file=str(hpsv3_prompt_file), device="cpu") as api:
        scored = api.score_items([("a cat", [png(1, size=64), png(2, size=64)])])[0]
    assert body["scores"] == pytest.approx(scored.scores, abs=1e-5)
    assert [d["sigma"] for d in body["details"]] == pytest.approx([d["sigma"] for d in scored.details], rel=1e-5)


@requires_extra("vlm")
def test_bench_generators_with_hpsv3(tiny_hpsv3_dir, hpsv3_prompt_file, tmp_path):
    from prefbench.generators import GeneratorConfig, bench_generators
    from tests.report.test_generators import make_bench

    prompts, images = make_bench(tmp_path / "gens", n_prompts=2, k=1)
    cfg = GeneratorConfig(scorer="hpsv3", model=str(tiny_hpsv3_dir), prompts=str(prompts), images=str(images),
                          params={"prompt_file": str(hpsv3_prompt_file), "device": "cpu"},
                          results_root=str(tmp_path / "r"), progress=False, bootstrap_resamples=200)
    rec = bench_generators(cfg, log=lambda msg: None)
    assert rec["counts"]["ok"] == 6 and len(rec["generators"]) == 3
    from pathlib import Path

    rows = _rows(Path(rec["run_dir"]))
    assert len(rows) == 6 and all(r["sigma"] > 0 for r in rows)


@requires_extra("serve")
def test_a_scorer_without_sigma_refuses_return_sigma():
    from starlette.testclient import TestClient

    from prefbench.api import load_scorer
    from prefbench.serve.app import create_app

    with load_scorer("random") as scorer, TestClient(create_app(scorer)) as http:
        assert not scorer.gives_sigma
        r = http.post("/v1/score", json={"prompt": "x", "images": [b64(png(1))], "return": ["score", "sigma"]})
        assert r.status_code == 400 and "gives no sigma" in r.json()["error"]
        r = http.post("/v1/score", json={"prompt": "x", "images": [b64(png(1))], "return": "sigma"})
        assert r.status_code == 400 and "must be a list" in r.json()["error"]
        r = http.post("/v1/score", json={"prompt": "x", "images": [b64(png(1))], "return": ["score"]})
        assert r.status_code == 200 and "sigmas" not in r.json()
