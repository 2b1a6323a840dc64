"""A third-party engine, declared under the ``prefbench.engines`` entry-point group: what an
engine plugin needs, and all it needs (one module plus an entry-point line).

``echo`` answers every job without a model: the answer distribution leans towards the
candidate picked by a hash of the job's key and its images' sizes, and every rollout's text is
a fixed reasoning trace. A job whose key contains "fail" comes back as a failed (retryable)
rollout, so tests can see how scorers treat an engine's failures.
"""

import hashlib
import math

from prefbench.engines.base import Engine, Rollout


class EchoEngine(Engine):
    """A model-free engine for tests: seeded answer distributions, a fixed trace."""

    name = "echo"
    extra = None

    def __init__(self, *, model=None, sharpness: float = 2.0):
        super().__init__(model=model)
        self.sharpness = float(sharpness)
        self.calls = 0

    def load(self, candidates):
        self.loaded = True

    def generate(self, jobs, spec, stats=None):
        self.calls += 1
        out = []
        for job in jobs:
            rows = []
            for r in range(spec.rows_per_job):
                if "fail" in job.key:
                    rows.append(Rollout(error="echo: asked to fail", retryable=True))
                    continue
                sizes = ",".join(f"{im.size[0]}x{im.size[1]}" for im in job.images)
                h = int.from_bytes(hashlib.sha256(f"{job.key}|{sizes}|{spec.seed}|{r}".encode()).digest()[:4], "little")
                pick = h % len(spec.candidates)
                logits = [self.sharpness if i == pick else 0.0 for i in range(len(spec.candidates))]
                text = "<think>echo</think>\n<answer>" + spec.candidates[pick]
                if spec.tail_tokens:  # the hard read-out reads the closed answer
                    text += "</answer>"
                mass = 1.0 - 1e-3
                rows.append(Rollout(text=text, answer_logits=logits, answer_mass=mass, generated_tokens=3,
                                    forced=spec.budget > 0 and spec.budget < 3, trace={"echo_pick": pick}))
            out.append(rows)
        return out

    def summary(self):
        return {"name": self.name, "calls": self.calls, "prefix_sharing": False, "math_ok": math.isfinite(1.0)}
