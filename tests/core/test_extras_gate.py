"""The tests' one extra gate (tests/fixtures/extras.py) skips exactly when prefbench's own extras
metadata says a module is missing, and says which pip command installs it. A missing package is
simulated by ``sys.modules[name] = None``, which ``importlib.util.find_spec`` reports as absent."""

from __future__ import annotations

import sys

import pytest

from prefbench import extras
from tests.fixtures.extras import requires_extra, skip_reason, skip_without_extra


def _hide(monkeypatch, *names: str) -> None:
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def test_an_installed_extra_does_not_skip(monkeypatch):
    monkeypatch.setattr(extras, "all_extras", lambda: {"pandas": ("pandas",)})
    monkeypatch.setattr(extras, "missing", lambda extra: [])
    assert skip_reason("pandas") is None
    mark = requires_extra("pandas")
    assert mark.mark.name == "skipif" and mark.mark.args == (False,)
    skip_without_extra("pandas")  # returns: nothing to skip


def test_a_missing_module_skips_with_the_pip_command(monkeypatch):
    assert "prometheus_client" in extras.extra_modules("serve")  # from pyproject.toml, not restated here
    _hide(monkeypatch, "prometheus_client")
    reason = "needs prometheus_client: pip install -e '.[serve]'"
    assert skip_reason("serve") == reason
    mark = requires_extra("serve")
    assert mark.mark.args == (True,) and mark.mark.kwargs["reason"] == reason
    with pytest.raises(pytest.skip.Exception, match=r"needs prometheus_client: pip install -e '\.\[serve\]'"):
        skip_without_extra("serve")


def test_several_extras_name_each_missing_one(monkeypatch):
    _hide(monkeypatch, "pandas", "ray")
    assert skip_reason("pandas", "ray", "hub") == ("needs pandas: pip install -e '.[pandas]'; "
                                                   "needs ray: pip install -e '.[ray]'")


def test_vllm_names_its_own_setup_script(monkeypatch):
    _hide(monkeypatch, "vllm")
    assert "scripts/setup_vllm_env.sh" in skip_reason("vllm")


def test_a_misspelt_extra_is_an_error_not_a_silent_pass():
    with pytest.raises(ValueError, match="unknown install extra.*servr.*prefbench declares .*serve"):
        requires_extra("servr")
    with pytest.raises(ValueError, match="unknown install extra"):
        skip_without_extra("vlm", "vml")
