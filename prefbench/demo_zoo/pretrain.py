"""Pre-train the demo world's tiny "base" VLM: the stand-in for a pretrained instruct model.

A real instruct VLM arrives knowing how to look at an image, name what it shows, count things,
spot blur or a wrong colour, and answer in whatever format an instruction asks for. This gives a
tiny Qwen2.5-VL-architecture model (random init, the ``prefbench.testing.tiny_vlm`` tokenizer)
those skills in two stages, both on a stream of fresh scenes drawn like the demo world's train
split (``prefbench.data.demo.scene_pairs``: a prompt and two images made for it, none of them a
benchmark image, as a real VLM's pre-training data is not the benchmark).

Stage 1 (``--vision-steps``, ``pretrain_vision``) trains the vision tower alone, as a real VLM's
image encoder is trained before it meets a language model: linear heads on its visual tokens
classify what each image shows (its objects' count, colours, shapes and layout, its background)
and which quality defects it has, from the generator's record of the image. Stage 2 trains the
whole model by supervised next-token prediction on six tasks, none of which asks about
preference:

1. ``describe`` an image (the caption of what it actually shows, with its quality defects);
2. ``count`` the shapes, reasoning in ``<think>`` and answering in words in ``<answer>``;
3. ``match``: does an image show a given text (its true content, or the content with one
   attribute changed)?
4. ``compare``: which of two images shows more shapes?
5. ``scale``: numeric questions about one image made for a prompt, on a stated scale: how many
   quality defects it has, how many of the prompt's details it gets wrong, how many shapes it
   shows (``SCALE_QUESTIONS``);
6. ``judge``: the same facts compared between two images made for one prompt
   (``JUDGE_QUESTIONS``).

Tasks 5 and 6 use the scorers' instruction formats (the prompt shown before the question; "give
the rating as a single number ... for example <think>...</think><answer>2</answer>"), so the
scorers' prompts are in the base's distribution, as they are for a real instruct model; their
questions are about countable facts of the generator's record of each image (which deviations it
drew), never about the simulated human rankings or the utility. How much each fact matters to
people, and in which direction the rating scale runs, is left to GRPO (``prefbench train``), as
in the paper. Two-way questions name their two answer labels in the instruction ("Answer 4 if
Image 2 has fewer, or no if Image 1 has fewer"): mostly 1 and 0, the labels the scorers use, else
drawn at random from digits and yes/no (``labels``), so the base learns the comparison and still
answers with whatever labels an instruction names. Each two-image fact is asked in several
wordings (``JUDGE_QUESTIONS``).

In every ``<think>`` the model first says what it sees, defects included, the way an instruct VLM
describes before it answers; when the question comes with a prompt, the description marks each
detail that deviates from it where it is named ("two blue (asked red) circles", ``annotated``). Counts asked in words are answered in words: a base model whose
only numeric answer was the shape count put ~0.999 of its mass on one rating for every rating
rollout, so GRPO's groups had no variance to learn from.

    python -m prefbench.demo_zoo.pretrain OUT_DIR [--steps 1500] [--vision-steps 0] [--seed 0]
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import time
from pathlib import Path

COUNT_WORDS = {"one": 1, "two": 2, "three": 3}
NUMBER_WORDS = {v: k for k, v in COUNT_WORDS.items()}

TEXT_CONFIG = dict(hidden_size=96, intermediate_size=192, num_hidden_layers=4, num_attention_heads=3,
                   num_key_value_heads=1, max_position_embeddings=4096, rms_norm_eps=1e-6,
                   rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0,
                                    "mrope_section": [4, 6, 6]})
VISION_CONFIG = dict(depth=3, hidden_size=96, intermediate_size=192, num_heads=3, out_hidden_size=96,
                     patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                     fullatt_block_indexes=[2])

#: the processor resizes every 112-pixel demo image to 224 x 224: 64 visual tokens instead of 16
#: (at 16, the base model could name colours but barely shapes, counts or layouts)
PIXELS = (224 * 224, 224 * 224)

#: the vision tower's learning rate in the language stage, relative to the rest, after a vision
#: stage: it keeps what the vision stage taught while the language model learns to read it
VISION_LR_SCALE = 0.2

THINK_HINT = "Reason step by step inside <think> </think>, then answer inside <answer> </answer>."


def build_base(seed: int):
    """A randomly initialised base model + processor (tiny_vlm's tokenizer and processor, larger sizes)."""
    from prefbench.testing.tiny_vlm import new_model_and_processor

    return new_model_and_processor(TEXT_CONFIG, VISION_CONFIG, seed, pixels=PIXELS)


def shape_count(caption: str) -> int:
    first = caption.split()[0]
    return COUNT_WORDS.get(first, 2)  # relation scenes ("a X left of a Y") show two shapes


def altered(what: str, rng: random.Random) -> str:
    """The content part of a caption with one attribute (colour, shape, count or order) changed."""
    from prefbench.data.demo import COLOURS, COUNTS, RELATIONS, SHAPES

    words = what.split()
    colours = [i for i, w in enumerate(words) if w in COLOURS]
    shapes = [i for i, w in enumerate(words) if w.rstrip("s") in SHAPES]
    options = ["colour", "shape"] + (["count"] if words[0] in COUNT_WORDS else ["order"])
    kind = rng.choice(options)
    if kind == "colour":
        i = rng.choice(colours)
        words[i] = rng.choice([c for c in COLOURS if c != words[i]])
    elif kind == "shape":
        i = rng.choice(shapes)
        plural = words[i].endswith("s")
        new = rng.choice([s for s in SHAPES if s != words[i].rstrip("s")])
        words[i] = new + ("s" if plural else "")
    elif kind == "count":
        n = COUNT_WORDS[words[0]]
        m = rng.choice([c for c in COUNTS if c != n])
        words[0] = COUNTS[m]
        i = shapes[0]
        base = words[i].rstrip("s")
        words[i] = base + ("s" if m > 1 else "")
    else:  # a relation scene: swap the two objects
        text = " ".join(words)
        for rel in RELATIONS:
            if f" {rel} " in text:
                first, second = text.split(f" {rel} ")
                return f"{second} {rel} {first}"
    return " ".join(words)


TASKS = ("describe", "count", "match", "compare", "scale", "judge")
#: the order tasks cycle through in a batch: the instruction-format tasks ("scale", "judge") twice
SCHEDULE = TASKS + ("scale", "judge")
#: answer labels for the two-way questions, stated in the instruction (``labels``), so that the
#: model learns to answer with the labels an instruction names
LABELS = ("0", "1", "2", "3", "4", "5", "yes", "no")

QUALITY = "quality defects (blur, noise, compression, overexposure, low contrast)"
DETAILS = "of the prompt's details (colour, shape, count, layout)"
#: numeric questions about one image: (question, what 0 and the top of the scale mean, the fact counted)
SCALE_QUESTIONS = (
    (f"Rate how many {QUALITY} this image has", "none", "many", "defects"),
    (f"Rate how many {DETAILS} this image gets wrong", "none", "all", "errors"),
    ("Rate how many shapes this image shows", "none", "many", "shapes"),
)
#: two-image questions: (question, the comparison a label names, the fact compared, fewer wins).
#: Each fact is asked in several wordings: a base that saw one wording per fact bound its two
#: descriptions to the right images under that wording only (``scripts/demo_pairwise_binding_probe.py``:
#: under the pairwise scorer's unseen question, 39 of 106 descriptions were of the other image; 7 of
#: 112 for the shipped base), where an instruct model keeps reading two images right whatever the
#: question. None asks about preference or people: the pairwise scorer's question stays unseen.
JUDGE_QUESTIONS = (
    (f"Which image has fewer {QUALITY}?", "has fewer", "defects"),
    ("Which image looks cleaner, with less blur, noise, compression, overexposure or low contrast?",
     "looks cleaner", "defects"),
    ("Judging only their visual quality (sharpness, noise, compression, exposure, contrast), which image "
     "has fewer artifacts?", "has fewer artifacts", "defects"),
    ("Compare the two images for damage such as blur, noise, compression, clipping or low contrast. "
     "Which one is less damaged?", "is less damaged", "defects"),
    (f"Which image gets fewer {DETAILS} wrong?", "gets fewer wrong", "errors"),
    ("Which image follows the text prompt more closely, judging its colours, shapes, count and layout?",
     "follows it more closely", "errors"),
    ("Check each image against the prompt (colour, shape, count, layout). Which one has fewer mistakes?",
     "has fewer mistakes", "errors"),
    ("Which image matches the prompt's description more faithfully?", "matches it more faithfully", "errors"),
    ("Which image shows more shapes?", "shows more", "shapes"),
    ("Counting the objects drawn in each image, which image contains more of them?", "contains more", "shapes"),
    ("Which of the two images has the larger number of shapes in it?", "has more", "shapes"),
)

#: share of two-way questions labelled ("1" = yes / Image 2, "0" = no / Image 1), the labels the
#: scorers' yes/no and pairwise templates use; the rest draw random labels. With random labels
#: on every example the base answered its own two-image questions at chance (binding probe: right
#: 24, wrong 25 of 53 after 1,800 steps): one answer token after ~90 tokens of description, its
#: meaning redrawn each time, was too weak a signal for a 1M-parameter model. Mostly fixed labels
#: make the comparison learnable (right 38, wrong 17 of 55 on 1/0-labelled questions) and the
#: random rest keeps the base answering with whatever labels an instruction names.
FIXED_LABEL_SHARE = 0.75


def labels(rng: random.Random) -> tuple[str, str]:
    """Two distinct answer labels for a two-way question, (for yes / Image 2, for no / Image 1):
    ("1", "0") with probability ``FIXED_LABEL_SHARE``, else two of ``LABELS`` in random order."""
    if rng.random() < FIXED_LABEL_SHARE:
        return "1", "0"
    a, b = rng.sample(LABELS, 2)
    return a, b


def facts(caption: str, flaws: list[str]) -> dict[str, int]:
    """What the numeric questions count, from the generator's record of an image (never its utility)."""
    from prefbench.data.demo import ALIGNMENT_FLAWS

    errors = sum(f in ALIGNMENT_FLAWS for f in flaws)
    return {"errors": errors, "defects": len(flaws) - errors, "shapes": shape_count(caption)}


@functools.cache
def _vision_fields() -> dict[str, tuple[str, ...]]:
    """What the vision stage (``pretrain_vision``) reads off each image: name -> its classes. All
    from the image's caption and flaw record (what the generator drew), never from its utility."""
    from prefbench.data.demo import BACKGROUNDS, COLOURS, SHAPES

    no_yes = ("no", "yes")
    return {"kind": ("count", "relation"), "count": ("one", "two", "three"),
            "colour1": tuple(COLOURS), "shape1": SHAPES, "colour2": tuple(COLOURS), "shape2": SHAPES,
            "relation": ("left of", "above"), "background": tuple(BACKGROUNDS),
            "blur": no_yes, "noise": no_yes, "jpeg": no_yes, "clipping": no_yes, "low_contrast": no_yes}


def vision_labels(caption: str, flaws: list[str]) -> dict[str, int]:
    """Class index per ``_vision_fields`` name for one image (-100 where a field does not apply:
    the count of a relation scene, the second object of a count scene)."""
    from prefbench.data.demo import RELATIONS

    fields = _vision_fields()
    content, _, rest = caption.partition(" on a ")
    out = dict.fromkeys(fields, -100)
    out["background"] = fields["background"].index(rest.split(" background")[0])
    for q in ("blur", "noise", "jpeg", "clipping", "low_contrast"):
        out[q] = int(q in flaws)
    relation = next((r for r in RELATIONS if f" {r} " in content), None)
    if relation is None:  # "<count> <colour> <shape(s)>"
        count, colour, shape = content.split()
        out.update(kind=0, count=fields["count"].index(count), colour1=fields["colour1"].index(colour),
                   shape1=fields["shape1"].index(shape.rstrip("s")))
    else:  # "a <colour> <shape> <relation> a <colour> <shape>": first = drawn left / on top
        (_, c1, s1), (_, c2, s2) = _objects(content, relation)
        out.update(kind=1, relation=fields["relation"].index(relation), colour1=fields["colour1"].index(c1),
                   shape1=fields["shape1"].index(s1), colour2=fields["colour2"].index(c2),
                   shape2=fields["shape2"].index(s2))
    return out


def _objects(content: str, relation: str) -> tuple[list[str], list[str]]:
    first, second = content.split(f" {relation} ")
    return first.split(), second.split()


def annotated(caption: str, prompt: str, flaws: list[str]) -> str:
    """The caption of an image made for ``prompt``, with each detail that deviates from the prompt
    marked where it is named: "two blue (asked red) circles on a grey background, blurry", or
    "(swapped)" after a relation whose two objects change places. The way an instruct VLM points out
    what an image gets wrong while describing it; derived from the caption and the prompt only."""
    from prefbench.data.demo import RELATIONS

    content, _, rest = caption.partition(" on a ")
    asked = prompt.split(" on a ")[0]
    relation = next((r for r in RELATIONS if f" {r} " in asked), None)
    if relation is None:  # "<count> <colour> <shape(s)>": compare word by word (shape by its stem)
        words, want = content.split(), asked.split()
        out = [w if (w.rstrip("s") == a.rstrip("s") if i == 2 else w == a) else f"{w} (asked {a})"
               for i, (w, a) in enumerate(zip(words, want))]
        return " ".join(out) + " on a " + rest
    shown = _objects(content, relation)
    want = _objects(asked, relation)
    swapped = "relation" in flaws
    if swapped:  # the image shows the prompt's second object first
        want = (want[1], want[0])
    parts = [" ".join(w if w == a else f"{w} (asked {a})" for w, a in zip(obj, ask)) for obj, ask in zip(shown, want)]
    rel = f"{relation} (swapped)" if swapped else relation
    return f"{parts[0]} {rel} {parts[1]} on a {rest}"


#: a deviation mark written by ``annotated``
MARK = re.compile(r" \((asked \w+|swapped)\)")


def unmarked(text: str) -> str:
    """``text`` with ``annotated``'s deviation marks removed: what it says an image shows."""
    return MARK.sub("", text)


def _template_sentence(name: str, start: str) -> str:
    """The part of a shipped scorer template (``prefbench.scorers.vlm.templates``) that begins with
    ``start``, to the end of its line: pre-training asks in the scorers' own words."""
    from prefbench.scorers.vlm.prompts import load_template

    text = load_template(name)
    i = text.index(start)
    return text[i:].split("\n", 1)[0]


def _intro(rng: random.Random, prompt: str, two_images: bool) -> str:
    """How a question shows its prompt: the trained scorers' opening line or the zero-shot ones'."""
    if rng.random() < 0.5:
        return _template_sentence("pairwise_v1" if two_images else "rating_v1",
                                  "Two images" if two_images else "This image").format(prompt=prompt)
    return _template_sentence("zero_shot_rating_v1", "Text prompt").format(prompt=prompt)


def _number_format(rng: random.Random, high: int) -> str:
    """The answer-format instruction of a numeric question: rating_v1's or zero_shot_rating_v1's."""
    if rng.random() < 0.5:
        return _template_sentence("rating_v1", "First think").format(example=rng.randint(0, high))
    return _template_sentence("zero_shot_rating_v1", "Reason step by step").format(low=0, high=high)


def _choice_format(rng: random.Random, verb: str, second: str, first: str) -> str:
    if rng.random() < 0.5:
        return (f"First think it through inside <think> </think> tags, then answer inside <answer> </answer> tags "
                f"with {second} if Image 2 {verb}, or {first} if Image 1 {verb}, for example "
                f"<think>...</think><answer>{rng.choice((second, first))}</answer>.")
    return f"{THINK_HINT} Answer {second} if Image 2 {verb}, or {first} if Image 1 {verb}."


def make_example(task: str, stream, rng: random.Random) -> dict:
    """One training example of ``task`` from a ``prefbench.data.demo.scene_pairs`` stream: images,
    user text with <image> markers, and the assistant answer."""
    group = next(stream)
    img, cap, flaws = group["candidates"][0]
    what = cap.split(",")[0]
    if task == "describe":
        return {"images": [img], "user": "<image>\nDescribe this image.", "answer": cap[0].upper() + cap[1:] + "."}
    if task == "count":
        return {"images": [img], "user": f"<image>\nHow many shapes are in this image? {THINK_HINT} Answer in words.",
                "answer": f"<think>The image shows {cap}.</think><answer>{NUMBER_WORDS[shape_count(cap)]}</answer>"}
    if task == "match":
        content = what.split(" on a ")[0]
        shown = content if rng.random() < 0.5 else altered(content, rng)
        yes, no = labels(rng)
        return {"images": [img], "user": f'<image>\nDoes this image show "{shown}"? {THINK_HINT} '
                                         f"Answer {yes} if it does, or {no} if it does not.",
                "answer": f"<think>The image shows {cap}.</think><answer>{yes if shown == content else no}</answer>"}
    if task == "scale":
        question, bottom, top, fact = rng.choice(SCALE_QUESTIONS)
        high = rng.randint(3, 9)
        intro = _intro(rng, group["prompt"], two_images=False)
        return {"images": [img],
                "user": f"<image>\n{intro}\n{question}, on a scale from 0 ({bottom}) to {high} ({top}).\n"
                        f"{_number_format(rng, high)}",
                "answer": f"<think>The image shows {annotated(cap, group['prompt'], flaws)}.</think>"
                          f"<answer>{min(high, facts(cap, flaws)[fact])}</answer>"}
    if task == "judge":
        while True:  # two images of one prompt that differ in what the question compares
            question, verb, fact = rng.choice(JUDGE_QUESTIONS)
            (img, cap, flaws), (img2, cap2, flaws2) = group["candidates"]
            a, b = facts(cap, flaws)[fact], facts(cap2, flaws2)[fact]
            if a != b:
                break
            group = next(stream)
        second, first = labels(rng)
        two_wins = (b > a) if fact == "shapes" else (b < a)
        intro = _intro(rng, group["prompt"], two_images=True)
        return {"images": [img, img2],
                "user": f"{intro}\nImage 1: <image>\nImage 2: <image>\n{question}\n"
                        f"{_choice_format(rng, verb, second, first)}",
                "answer": f"<think>Image 1 shows {annotated(cap, group['prompt'], flaws)}. "
                          f"Image 2 shows {annotated(cap2, group['prompt'], flaws2)}.</think>"
                          f"<answer>{second if two_wins else first}</answer>"}
    if task != "compare":
        raise ValueError(f"unknown pre-training task {task!r}; known: {', '.join(TASKS)}")
    second, first = labels(rng)
    img2, cap2, _ = next(stream)["candidates"][0]
    while shape_count(cap2) == shape_count(cap):
        img2, cap2, _ = next(stream)["candidates"][0]
    return {"images": [img, img2],
            "user": f"Image 1: <image>\nImage 2: <image>\nWhich image shows more shapes? {THINK_HINT} "
                    f"Answer {second} if Image 2 shows more, or {first} if Image 1 shows more.",
            "answer": f"<think>Image 1 shows {cap}. Image 2 shows {cap2}.</think>"
                      f"<answer>{second if shape_count(cap2) > shape_count(cap) else first}</answer>"}


def _messages(ex: dict) -> list[dict]:
    content = []
    for i, part in enumerate(ex["user"].split("<image>")):
        if i:
            content.append({"type": "image"})
        if part.strip():
            content.append({"type": "text", "text": part})
    return [{"role": "user", "content": content},
            {"role": "assistant", "content": [{"type": "text", "text": ex["answer"]}]}]


def encode(processor, ex: dict) -> dict:
    """One example as tensors; the loss covers only the assistant answer (and its end token)."""
    msgs = _messages(ex)
    images = ex["images"]
    full = processor(text=[processor.apply_chat_template(msgs, tokenize=False)], images=images, return_tensors="pt")
    prompt = processor.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    n_prompt = len(processor(text=[prompt], images=images, return_tensors="pt")["input_ids"][0])
    ids = full["input_ids"][0]
    labels = ids.clone()
    labels[:n_prompt] = -100
    # mm_token_type_ids marks the image tokens: without it Qwen2.5-VL's forward falls back to 1-D
    # positions while generate() (and so every scorer and GRPO rollout) uses the 3-D M-RoPE ones
    return {"input_ids": ids, "labels": labels, "mm_token_type_ids": full["mm_token_type_ids"][0],
            "pixel_values": full["pixel_values"], "image_grid_thw": full["image_grid_thw"]}


def collate(encoded: list[dict], pad_id: int) -> dict:
    """Right-pad pre-encoded examples into a batch."""
    import torch

    n = max(len(e["input_ids"]) for e in encoded)
    ids = torch.full((len(encoded), n), pad_id, dtype=torch.long)
    labels = torch.full((len(encoded), n), -100, dtype=torch.long)
    mask = torch.zeros((len(encoded), n), dtype=torch.long)
    types = torch.zeros((len(encoded), n), dtype=torch.long)
    for row, e in enumerate(encoded):
        k = len(e["input_ids"])
        ids[row, :k], labels[row, :k], mask[row, :k] = e["input_ids"], e["labels"], 1
        types[row, :k] = e["mm_token_type_ids"]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "mm_token_type_ids": types,
            "pixel_values": torch.cat([e["pixel_values"] for e in encoded]),
            "image_grid_thw": torch.cat([e["image_grid_thw"] for e in encoded])}


def _update(loss, params, opt, sched, losses: list[float], bar, step: int) -> None:
    """One optimizer step of either stage: backward, clip, step, schedule; the loss on the bar."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    opt.zero_grad()
    losses.append(loss.item())
    if step % 10 == 0:
        bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.3f}")


def _curve(losses: list[float]) -> dict:
    return {"loss_first_50": sum(losses[:50]) / max(1, len(losses[:50])),
            "loss_last_50": sum(losses[-50:]) / max(1, len(losses[-50:])),
            "loss_curve": [round(sum(losses[i:i + 50]) / len(losses[i:i + 50]), 4) for i in range(0, len(losses), 50)]}


def _vision_batch(processor, stream, n: int) -> tuple[dict, dict]:
    import torch

    images, labels = [], []
    while len(images) < n:
        for img, cap, flaws in next(stream)["candidates"]:
            images.append(img)
            labels.append(vision_labels(cap, flaws))
    images, labels = images[:n], labels[:n]
    enc = processor.image_processor(images=images, return_tensors="pt")
    return enc, {k: torch.tensor([lab[k] for lab in labels]) for k in labels[0]}


def _vision_logits(model, heads, enc, n: int) -> dict:
    tokens = model.model.visual(enc["pixel_values"], grid_thw=enc["image_grid_thw"]).pooler_output
    flat = tokens.reshape(n, -1)
    logits = heads(flat)
    names = _vision_fields()
    out, i = {}, 0
    for k, classes in names.items():
        out[k] = logits[:, i:i + len(classes)]
        i += len(classes)
    return out


def pretrain_vision(model, processor, steps: int, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                    log=print) -> dict:
    """Stage 1: train the vision tower alone to read each image's content and defects.

    Linear heads on the tower's merged visual tokens (the tokens the language model reads,
    flattened in order, so that layout stays readable) classify every ``_vision_fields`` attribute of
    fresh ``scene_pairs`` images; the heads are dropped afterwards. A real VLM's vision encoder is
    likewise pre-trained before it is joined to a language model. Measured: with only the
    caption-level language-model loss, the tower read an image's shape right 41% of the time,
    its count 51%, noise never (measured when this stage was added, commit 201eac6)."""
    import torch
    from tqdm import tqdm

    from prefbench.data.demo import scene_pairs

    torch.manual_seed(seed)
    fields = _vision_fields()
    n_tokens = (PIXELS[0] // (VISION_CONFIG["patch_size"] * VISION_CONFIG["spatial_merge_size"]) ** 2)
    heads = torch.nn.Linear(n_tokens * VISION_CONFIG["out_hidden_size"], sum(len(c) for c in fields.values()))
    params = list(model.model.visual.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=max(0.05, 2 / steps))
    stream = scene_pairs(seed + 1000)
    model.model.visual.train()
    losses, skipped = [], 0
    bar = tqdm(range(steps), desc="pretrain vision", unit="step")
    for step in bar:
        enc, labels = _vision_batch(processor, stream, batch_size)
        logits = _vision_logits(model, heads, enc, batch_size)
        # a field no image of the batch has (e.g. no relation scene drawn) is left out, not a 0/0
        loss = sum(torch.nn.functional.cross_entropy(logits[k], labels[k], ignore_index=-100)
                   for k in fields if (labels[k] != -100).any())
        if not torch.isfinite(loss):  # never let one bad batch poison the weights; counted
            skipped += 1
            opt.zero_grad()
            sched.step()
            continue
        _update(loss, params, opt, sched, losses, bar, step)
    # held-out accuracy per attribute, on images from a stream the training never drew from
    model.model.visual.eval()
    hits, totals = dict.fromkeys(fields, 0), dict.fromkeys(fields, 0)
    held_out = scene_pairs(seed + 2000)
    with torch.no_grad():
        for _ in range(8):
            enc, labels = _vision_batch(processor, held_out, 64)
            logits = _vision_logits(model, heads, enc, 64)
            for k in fields:
                keep = labels[k] != -100
                hits[k] += int((logits[k].argmax(-1)[keep] == labels[k][keep]).sum())
                totals[k] += int(keep.sum())
    return {"steps": steps, "batch_size": batch_size, "lr": lr, "n_images": steps * batch_size,
            "skipped_nonfinite_steps": skipped,
            "held_out_accuracy": {k: round(hits[k] / totals[k], 3) for k in fields if totals[k]}, **_curve(losses)}


def pretrain(out_dir: str | Path, steps: int = 1500, batch_size: int = 16, lr: float = 2e-3, seed: int = 0,
             vision_steps: int = 0, vision_lr_scale: float = VISION_LR_SCALE, log=print) -> dict:
    """Stage 1 (``vision_steps`` > 0): ``pretrain_vision``; stage 2: the whole model on the six
    tasks, the vision tower at ``vision_lr_scale`` times the learning rate."""
    import torch
    from tqdm import tqdm

    from prefbench.data.demo import scene_pairs

    torch.manual_seed(seed)
    out = Path(out_dir)
    model, processor = build_base(seed)
    vision = pretrain_vision(model, processor, vision_steps, seed=seed) if vision_steps else None
    model.train()
    stream, rng = scene_pairs(seed), random.Random(seed)
    pad_id = processor.tokenizer.pad_token_id
    tower = {id(p) for p in model.model.visual.parameters()}
    groups = [{"params": [p for p in model.parameters() if id(p) not in tower]},
              {"params": list(model.model.visual.parameters())}]
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[lr, lr * (vision_lr_scale if vision else 1.0)],
                                                total_steps=steps, pct_start=max(0.05, 2 / steps))
    losses, start = [], time.perf_counter()
    bar = tqdm(range(steps), desc="pretrain base", unit="step")
    for step in bar:
        batch = [make_example(SCHEDULE[k % len(SCHEDULE)], stream, rng) for k in range(step * batch_size, (step + 1) * batch_size)]
        enc = collate([encode(processor, ex) for ex in batch], pad_id)
        _update(model(**enc).loss, model.parameters(), opt, sched, losses, bar, step)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    record = {"builder": "prefbench.demo_zoo.pretrain", "seed": seed, "steps": steps, "batch_size": batch_size,
              "lr": lr, "n_examples": steps * batch_size,
              "corpus": "prefbench.data.demo.scene_pairs (fresh train-distribution scenes)", "tasks": list(SCHEDULE),
              "vision_stage": vision, "vision_lr_scale": vision_lr_scale if vision else 1.0,
              "wall_s": round(time.perf_counter() - start, 1), **_curve(losses)}
    (out / "prefbench_pretrain.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m prefbench.demo_zoo.pretrain", description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--vision-steps", type=int, default=0,
                   help="steps of the vision-tower stage before the language stage (default 0: none)")
    a = p.parse_args(argv)
    rec = pretrain(a.out_dir, a.steps, a.batch_size, a.lr, a.seed, vision_steps=a.vision_steps)
    if rec["vision_stage"]:
        rec["vision_stage"] = {k: v for k, v in rec["vision_stage"].items() if k != "loss_curve"}
    print(json.dumps({k: v for k, v in rec.items() if k != "loss_curve"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
