"""Multimodal RewardBench 2 (facebookresearch/MMRB2), the text-to-image task. CC BY-NC 4.0:
evaluation only, not for training.

Two layouts, split ``t2i``:
- the repository's local build (``benchmark/build_from_hf.py``): ``<data-dir>/t2i.json`` =
  ``{"pairs": [{id, prompt_content: [["text", ...]], response_a: {model_name, response_content:
  [["image", "images/..."]]}, response_b: {...}, chosen: "A"|"B", human_annotations, prompt_source}]}``
  with image paths relative to the data dir (a ``prompt`` string is accepted for the text too);
- the hub parquet (``rl-research/multimodal-rewardbench-2``, config ``t2i``):
  ``<data-dir>/t2i.parquet`` or shards ``<data-dir>/t2i/test-*.parquet`` with ``pair_id,
  prompt_text, response_a_images, response_b_images, chosen``.
Image 0 is response A; ranks follow ``chosen``. Item ids are the pair ids.
"""

from __future__ import annotations

from pathlib import Path

from prefbench.data._io import check_item_id, image_cell, parquet_files, read_json, read_parquet
from prefbench.data.model import ImageRef, Item, Split
from prefbench.data.spec import DatasetSpec, Download
from prefbench.errors import DataError

SPEC = DatasetSpec(
    "mmrb2", ("t2i",), "mmrb2", "prefbench.data.mmrb2",
    "Multimodal RewardBench 2, text-to-image (Meta 2025): 1,000 expert pairs; CC BY-NC, evaluation only",
    kind="pair", default_split="t2i",
    download=Download("rl-research/multimodal-rewardbench-2", {"*": ("{split}/test-*.parquet",)}),
    trainable=False,
    train_note="Multimodal RewardBench 2 is CC BY-NC 4.0, for evaluation only: it is not to be used "
               "for training (prefbench/data/mmrb2.py)",
)


CHOSEN_RANKS = {"A": [1, 2], "B": [2, 1]}


def _chosen(value, path, where, line=None):
    key = value.upper() if isinstance(value, str) else value
    if key not in CHOSEN_RANKS:
        raise DataError(f"{where}: chosen must be 'A' or 'B', got {value!r}", path, line)
    return CHOSEN_RANKS[key]


def _one_image(content, path, where) -> str:
    images = [c[1] for c in content or [] if isinstance(c, list) and len(c) == 2 and c[0] == "image"]
    if len(images) != 1 or not isinstance(images[0], str) or not images[0]:
        raise DataError(f"{where}: a text-to-image response holds exactly one image, found {len(images)}", path)
    return images[0]


def _from_json(path: Path, data_dir: Path) -> list[Item]:
    raw = read_json(path)
    pairs = raw.get("pairs") if isinstance(raw, dict) else None
    if not isinstance(pairs, list):
        raise DataError("expected {\"pairs\": [...]}", path)
    items, seen = [], {}
    for pos, obj in enumerate(pairs):
        where = f"pair {pos}"
        if not isinstance(obj, dict):
            raise DataError(f"{where}: expected an object", path)
        pid = check_item_id(obj.get("id", obj.get("pair_id")), seen, path, where, "id")
        prompt = obj.get("prompt")
        if prompt is None:
            texts = [c[1] for c in obj.get("prompt_content") or [] if isinstance(c, list) and len(c) == 2
                     and c[0] == "text" and isinstance(c[1], str)]
            prompt = "\n".join(texts) if texts else None
        if not isinstance(prompt, str) or not prompt:
            raise DataError(f"{where}: no prompt text (prompt or prompt_content)", path)
        refs = []
        for side in ("response_a", "response_b"):
            resp = obj.get(side)
            if not isinstance(resp, dict):
                raise DataError(f"{where}: missing {side}", path)
            rel = _one_image(resp.get("response_content"), path, f"{where} {side}")
            refs.append(ImageRef(key=rel, path=data_dir / rel))
        meta = {k: obj[k] for k in ("prompt_source", "human_annotations") if k in obj}
        meta["models"] = [(obj.get(s) or {}).get("model_name") for s in ("response_a", "response_b")]
        items.append(Item(pid, prompt, refs, _chosen(obj.get("chosen"), path, where), meta=meta))
    return items


def _from_parquet(files: list[Path], with_images: bool) -> list[Item]:
    columns = ["pair_id", "prompt_text", "chosen"] + (["response_a_images", "response_b_images"] if with_images else [])
    items, seen = [], {}
    for path, row, obj in read_parquet(files, columns):
        where = f"row {row}"
        pid = check_item_id(obj["pair_id"], seen, path, where, "pair_id")
        refs = []
        for side in ("a", "b"):
            if with_images:
                cells = obj[f"response_{side}_images"]
                if not isinstance(cells, list) or len(cells) != 1:
                    raise DataError(f"{where}: response_{side}_images must hold one image", path)
                refs.append(ImageRef(key=f"{pid}:{side}", data=image_cell(cells[0], path, f"{where} response_{side}")))
            else:
                refs.append(ImageRef(key=f"{pid}:{side}"))
        items.append(Item(pid, str(obj["prompt_text"] or ""), refs, _chosen(obj["chosen"], path, where)))
    return items


def load(split: str, data_dir: Path, with_images: bool = True) -> Split:
    path = data_dir / f"{split}.json"
    if path.is_file():
        items = _from_json(path, data_dir)
        source = path
    else:
        files = parquet_files(data_dir, split, "mmrb2", (f"{split}/test-*.parquet",))
        items = _from_parquet(files, with_images)
        source = data_dir
    return Split("mmrb2", split, "mmrb2", items, source=str(source), root=data_dir,
                 note="MMRB2 is CC BY-NC 4.0: for evaluation, not training")
