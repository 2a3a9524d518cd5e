"""The package's documentation: every public name has a docstring, and README.md's
reference is the one gen_reference.py generates from them."""

from __future__ import annotations

import inspect
import os
import sys

from conftest import SDK

sys.path.insert(0, SDK)

import clawbox  # noqa: E402
import gen_reference  # noqa: E402


def _public(obj):
    for name, m in vars(obj).items():
        if name.startswith("_"):
            continue
        if isinstance(m, (classmethod, staticmethod)):
            m = m.__func__
        if inspect.isfunction(m) or isinstance(m, property) or inspect.isclass(m):
            yield name, m


def test_every_public_name_has_a_docstring():
    missing = []
    for mod in (clawbox, clawbox.client, clawbox.errors, clawbox.types, clawbox.door, clawbox._http, clawbox._config):
        assert mod.__doc__, mod.__name__
        for name, obj in _public(mod):
            if getattr(obj, "__module__", mod.__name__) != mod.__name__:
                continue
            if not (obj.__doc__ or "").strip():
                missing.append(f"{mod.__name__}.{name}")
            if inspect.isclass(obj):
                for mname, m in _public(obj):
                    doc = m.__doc__ if not isinstance(m, property) else m.fget.__doc__
                    if not (doc or "").strip():
                        missing.append(f"{mod.__name__}.{name}.{mname}")
    assert not missing, missing


def test_readme_reference_is_generated():
    with open(os.path.join(SDK, "README.md")) as f:
        text = f.read()
    assert gen_reference.render(text) == text, "sdk/python/README.md is out of date: run python3 gen_reference.py"


def test_py_typed_and_pyproject():
    assert os.path.exists(os.path.join(SDK, "clawbox", "py.typed"))
    with open(os.path.join(SDK, "pyproject.toml")) as f:
        pp = f.read()
    assert 'requires-python = ">=3.9"' in pp and "dependencies = []" in pp
