"""Does a demo VLM describe each of two images as itself, under which question?

Two-image examples are drawn from the base model's pre-training stream
(``prefbench.data.demo.scene_pairs``, ``judge`` task, seed 777: never a training example of the
shipped base, which used seed 0). For each, the model writes its greedy reasoning twice, with the
same prompt and images: once under the pre-training question (e.g. "Which image gets fewer of the
prompt's details wrong?") and once under the pairwise scorer's question (``pairwise_v1``, "Which
image would people prefer ..."). Each "Image k shows ..." description (deviation marks removed) is
classed ``own`` (Image k's true content), ``other`` (the other image's) or ``neither``.

Under the pre-training question it also checks the answer (``answer_status``): ``right`` (the
label the question names for the true comparison), ``wrong`` (the other named label) or ``other``
(no answer, or a label the question does not name). The base's two-image answers are its
pre-training targets, so this is how well it learnt the two-image comparison itself.

    python scripts/demo_pairwise_binding_probe.py [MODEL] [--examples 25]

MODEL defaults to the bundled base (``prefbench-demo/base``). Needs the ``vlm`` extra.
"""

from __future__ import annotations

import argparse
import collections
import random
import re


def content(description: str) -> str:
    """What a description says an image shows, without deviation marks or quality words."""
    from prefbench.demo_zoo.pretrain import unmarked

    return unmarked(description).split(",")[0].strip()


def classify(reasoning: str, truth: tuple[str, str]) -> list[str]:
    """``own`` / ``other`` / ``neither`` for the descriptions of Image 1 and Image 2 in ``reasoning``."""
    out = []
    for k in (0, 1):
        m = re.search(rf"Image {k + 1} shows (.*?)(?:\.|$)", reasoning)
        said = content(m.group(1)) if m else ""
        out.append("own" if said == truth[k] else "other" if said == truth[1 - k] else "neither")
    return out


def answer_status(reply: str, user: str, target: str) -> str:
    """``right`` / ``wrong`` / ``other``: the reply's answer against the pre-training ``target``
    answer, among the two labels ``user`` names ("... 4 if Image 2 has fewer, or no if Image 1 ...")."""
    from prefbench.scorers.vlm.prompts import parse_answer

    named = re.search(r"(\S+) if Image 2 .*?, or (\S+) if Image 1", user)
    said = parse_answer(reply, ()).answer_text
    if not named or said not in named.groups():
        return "other"
    return "right" if said == parse_answer(target, ()).answer_text else "wrong"


def main(argv=None) -> int:
    import torch
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    from prefbench.data.demo import scene_pairs
    from prefbench.demo_zoo.pretrain import _messages, make_example
    from prefbench.models import resolve_model
    from prefbench.scorers.vlm.prompts import load_template

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="prefbench-demo/base")
    p.add_argument("--examples", type=int, default=25)
    a = p.parse_args(argv)
    aliased = resolve_model(a.model)  # prefbench-demo/<name> and other model aliases
    path = aliased.path if aliased else a.model
    proc = AutoProcessor.from_pretrained(path)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(path).eval()
    template = load_template("pairwise_v1")

    def reason(user: str, images) -> str:
        msgs = _messages({"user": user, "images": images, "answer": ""})[:1]
        text = proc.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        enc = proc(text=[text], images=images, return_tensors="pt")
        with torch.no_grad():
            g = model.generate(**enc, max_new_tokens=128, do_sample=False)
        return proc.tokenizer.decode(g[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    stream, rng = scene_pairs(777), random.Random(777)
    counts = {"pre-training question": collections.Counter(), "pairwise_v1 question": collections.Counter()}
    answers = collections.Counter()
    used = 0
    for _ in range(a.examples):
        ex = make_example("judge", stream, rng)
        truth = tuple(content(re.search(rf"Image {k} shows (.*?)(?:\. Image 2|\.</think>)", ex["answer"]).group(1))
                      for k in (1, 2))
        if truth[0] == truth[1]:  # same content: a description cannot tell which image it is of
            continue
        used += 1
        prompt = re.search(r'"(.*)"', ex["user"].split("\n")[0]).group(1)
        reply = reason(ex["user"], ex["images"])
        counts["pre-training question"].update(classify(reply, truth))
        answers[answer_status(reply, ex["user"], ex["answer"])] += 1
        counts["pairwise_v1 question"].update(classify(reason(template.format(prompt=prompt), ex["images"]), truth))
    print(f"{a.model}: {used} two-image examples, {2 * used} descriptions")
    for name, c in counts.items():
        print(f"  {name:<22} " + "  ".join(f"{k} {c[k]}" for k in ("own", "other", "neither")))
    print("  answers to the pre-training question: " + "  ".join(f"{k} {answers[k]}" for k in ("right", "wrong", "other")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
