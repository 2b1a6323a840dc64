"""The README's first command in a fresh clone at another path leaves the clone clean: every
committed demo run is answered from its record (its identity does not depend on where the
checkout or the installed package lives), and the committed-results tests pass there."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.fixtures.cli import REPO
from tests.fixtures.extras import skip_without_extra

pytestmark = pytest.mark.slow


def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def _fresh_clone(tmp_path):
    """A `git clone` of this repository at another path, holding the uncommitted work under test
    (committed there), as a new user's checkout would once that work is committed."""
    if _git("rev-parse", "HEAD", cwd=REPO).returncode != 0:
        pytest.skip("not a git checkout")
    clone = tmp_path / "elsewhere" / "a-new-users-clone"
    proc = _git("clone", "-q", str(REPO), str(clone), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # what the clone's working tree would hold once the uncommitted work under test is committed
    diff = _git("diff", "HEAD", "--binary", cwd=REPO).stdout
    new = _git("ls-files", "--others", "--exclude-standard", "-z", cwd=REPO).stdout.split("\0")
    if diff or any(new):
        if diff:
            assert subprocess.run(["git", "apply", "--whitespace=nowarn"], input=diff, cwd=clone, text=True,
                                  capture_output=True).returncode == 0
        for rel in filter(None, new):
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, clone / rel)
        assert _git("add", "-A", cwd=clone).returncode == 0
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t")
        subprocess.run(["git", "commit", "-qm", "work under test"], cwd=clone, env=env, check=True)
    return clone


def test_readme_first_command_in_a_fresh_clone_leaves_it_clean(tmp_path):
    skip_without_extra("vlm")
    clone = _fresh_clone(tmp_path)
    # the clone's own code, installed as a plain (non-editable) package: its bundled checkpoints
    # live under site, not under the checkout this test runs from
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--target", str(site), str(clone)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert _git("status", "--porcelain", cwd=clone).stdout == ""  # the build left nothing behind
    # PYTHONSAFEPATH: no process may import prefbench from its current folder (the clone's source
    # tree, whose prefbench.scorers lives in scorers/ and would resolve through this checkout's
    # editable install); the clone's tests/ come after the installed package on the path
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(clone)]), PYTHONSAFEPATH="1",
               HF_HUB_OFFLINE="1")
    where = subprocess.run([sys.executable, "-c", "import prefbench, prefbench.scorers, prefbench.demo_zoo as z; "
                            "print(prefbench.__file__, prefbench.scorers.__file__, z.ASSETS)"],
                           cwd=clone, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0 and all(p.startswith(str(site)) for p in where.stdout.split()), where
    proc = subprocess.run([sys.executable, "-m", "prefbench", "run", "--no-progress"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stderr.splitlines() if line.startswith("[")]  # "[row label] scorer"
    assert rows and proc.stderr.count("cached: ") == len(rows), proc.stderr[-3000:]  # nothing re-scored
    status = _git("status", "--porcelain", "--untracked-files=all", cwd=clone).stdout
    assert status == "", f"the README's first command changed the clone:\n{status}\n{proc.stderr[-3000:]}"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib",
                           "tests/report/test_report_committed.py"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert _git("status", "--porcelain", "--untracked-files=all", cwd=clone).stdout == ""


#: the README's commands in its order (set-up, then its bullets), after `pip install -e '.[vlm]'`
README_COMMANDS = [
    ["run"],                                                   # the first command
    ["run", "--scorer", "anchor_pairwise"],                    # "One scorer"
    ["run", "--scorer", "clip"],
    ["run", "--scorer", "random,clip", "--split", "test,ood"],  # "A matrix"
    ["report"],                                                # the tour: leaderboard.md and .html
    ["check", "--baseline", "results/baseline.json"],
]


def test_readme_commands_in_order_in_a_fresh_clone_change_no_file(tmp_path):
    """A new user's path (issue 30): in a fresh clone at another path, the README's commands in
    order are each answered from the committed runs (nothing scored, no new run folder), the
    report they end with is the committed one byte for byte, and `git status` stays clean; then
    the committed-results tests pass there. The installed prefbench (this venv) runs them in the
    clone, as a user's `pip install -e` would after `cd`."""
    skip_without_extra("vlm")
    skip_without_extra("clip")
    clone = _fresh_clone(tmp_path)
    # PYTHONSAFEPATH: the installed prefbench, not the clone's source tree from the current folder
    env = dict(os.environ, PYTHONSAFEPATH="1", HF_HUB_OFFLINE="1")
    for args in README_COMMANDS:
        quiet = ["--no-progress"] if args[0] == "run" else []
        proc = subprocess.run([sys.executable, "-m", "prefbench", *args, *quiet], cwd=clone, env=env,
                              capture_output=True, text=True, timeout=900)
        said = f"prefbench {' '.join(args)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        assert proc.returncode == 0, said
        assert args[0] != "run" or "cached: " in proc.stderr, said  # answered from the committed runs
        status = _git("status", "--porcelain", "--untracked-files=all", cwd=clone).stdout
        assert status == "", f"`prefbench {' '.join(args)}` changed the clone:\n{status}\n{said}"
    # the committed-results tests, in the clone (its tests/ on the path; prefbench as installed)
    env["PYTHONPATH"] = str(clone)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                           "--import-mode=importlib", "tests/report/test_report_committed.py"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert _git("status", "--porcelain", "--untracked-files=all", cwd=clone).stdout == ""
