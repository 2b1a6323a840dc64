"""The commands' implementations, one ``cmd_<name>(args) -> exit code`` each (the parser and
``main`` are in :mod:`prefbench.cli`), grouped by theme:

- :mod:`~prefbench.commands.scoring`: run, rank, evaluate, merge;
- :mod:`~prefbench.commands.results`: compare, report, check;
- :mod:`~prefbench.commands.environment`: list, doctor, download;
- :mod:`~prefbench.commands.workflows`: train, serve, bench-generators, reproduce.

Each imports what it needs inside the function, so that ``prefbench --help`` and ``prefbench
list`` import no torch, transformers, openai or fastapi. Every ``cmd_*`` is importable from here.
"""

from prefbench.commands.environment import cmd_doctor, cmd_download, cmd_list
from prefbench.commands.results import cmd_check, cmd_compare, cmd_report
from prefbench.commands.scoring import cmd_evaluate, cmd_merge, cmd_rank, cmd_run
from prefbench.commands.workflows import cmd_bench_generators, cmd_reproduce, cmd_serve, cmd_train

__all__ = ["cmd_bench_generators", "cmd_check", "cmd_compare", "cmd_doctor", "cmd_download", "cmd_evaluate",
           "cmd_list", "cmd_merge", "cmd_rank", "cmd_report", "cmd_reproduce", "cmd_run", "cmd_serve", "cmd_train"]
