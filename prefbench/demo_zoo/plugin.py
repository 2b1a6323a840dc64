"""The demo world as a plugin of prefbench's core, registered by this distribution's own entry
points (pyproject.toml) exactly as a third-party package registers its own:

- ``prefbench.datasets``: ``demo`` -> :data:`prefbench.data.demo.SPEC`;
- ``prefbench.scorers``: ``demo_oracle`` -> :class:`prefbench.scorers.demo_oracle.DemoOracle`;
- ``prefbench.models``: ``prefbench-demo`` -> :data:`prefbench.demo_zoo.ALIAS` (the bundled
  checkpoints, their per-scorer defaults and options on the demo);
- ``prefbench.suites``: ``demo`` -> :data:`SUITE`, what the bare ``prefbench run`` runs.

No core module imports the demo: the CLI and the runner reach it through these registries.
"""

from __future__ import annotations

from prefbench.demo_zoo.suite import leaderboard_text, run_suite
from prefbench.suites import Suite

SUITE = Suite("demo", run_suite, leaderboard_text,
              "every bundled scorer on the demo split, with the random floor and the noise-free ceiling")
