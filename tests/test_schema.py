"""The config schema as a whole: every string choice is validated in one place with a one-line error naming
the field and the allowed values, every field has a docstring that ``ezrobot train --help`` prints next to
its default, every field is read by the code (no dead settings), and removed fields say why."""
from __future__ import annotations

import ast
import dataclasses
import os
from typing import Iterator, Tuple

import pytest

from ezrobot.config import REMOVED_FIELDS, Config, ConfigError
from ezrobot.hydra_config import from_yaml, load_config, schema_help, to_yaml
from ezrobot.schema import CHOICES, check_choices, choice, field_docs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_DIRS = ("ezrobot", "envs", "tasks")


def leaves(obj=None, prefix: str = "") -> Iterator[Tuple[str, type, dataclasses.Field]]:
    """``(dotted key, owning class, field)`` of every leaf field of the schema."""
    obj = Config() if obj is None else obj
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from leaves(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", type(obj), f


CHOICE_FIELDS = [(key, f.metadata[CHOICES]) for key, _, f in leaves() if CHOICES in f.metadata]


def test_the_schema_declares_its_string_choices():
    keys = {key for key, _ in CHOICE_FIELDS}
    assert {"search.variant", "env.obs_type", "env.render_preset", "model.preset", "model.norm",
            "train.value_target", "train.policy_loss", "optim.optimizer"} <= keys


@pytest.mark.parametrize("key, allowed", CHOICE_FIELDS)
def test_every_choice_rejects_other_values_with_one_line(key, allowed):
    with pytest.raises(ConfigError) as info:
        load_config([f"{key}=not_a_choice"])
    assert str(info.value) == (f"{key}='not_a_choice' is not allowed; choose one of "
                               f"{', '.join(str(a) for a in allowed)}")


def test_every_choice_accepts_each_allowed_value():
    cfg = Config()
    for key, allowed in CHOICE_FIELDS:
        group, name = key.split(".") if "." in key else (None, key)
        sub = getattr(cfg, group) if group else cfg
        for value in allowed:
            setattr(sub, name, value)
            check_choices(cfg)
        setattr(sub, name, dataclasses.fields(sub)[[f.name for f in dataclasses.fields(sub)].index(name)].default)


def test_choice_rejects_a_default_outside_its_choices():
    with pytest.raises(ValueError, match="default 'c'"):
        choice("c", ("a", "b"))


def test_every_field_has_a_docstring_and_help_prints_it_after_the_default():
    help_lines = schema_help().splitlines()
    for key, cls, f in leaves():
        doc = field_docs(cls).get(f.name)
        assert doc, f"{key} has no docstring"
        heads = [i for i, line in enumerate(help_lines) if line.startswith(f"  {key}=")]
        assert len(heads) == 1, key
        after = " ".join(line.strip() for line in help_lines[heads[0] + 1:heads[0] + 30]
                         if line.startswith("      "))
        assert after.startswith(doc[:40]), f"{key}: help shows {after[:60]!r}, docstring {doc[:60]!r}"


def _reads() -> set:
    """Attribute names the package reads, outside validators (an
    attribute of an imported module, such as ``re.compile``, is not a config read)."""
    names = set()
    for folder in SOURCE_DIRS:
        for dirpath, _, filenames in os.walk(os.path.join(REPO, folder)):
            for name in filenames:
                if not name.endswith(".py"):
                    continue
                with open(os.path.join(dirpath, name), encoding="utf-8") as fh:
                    tree = ast.parse(fh.read())
                skip = set()
                modules = {(a.asname or a.name).split(".")[0] for node in ast.walk(tree)
                           if isinstance(node, ast.Import) for a in node.names}
                for node in ast.walk(tree):
                    if isinstance(node, ast.FunctionDef) and node.name.startswith(("validate", "_validate")):
                        skip |= {id(n) for n in ast.walk(node)}
                    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                        skip.add(id(node.value))
                for node in ast.walk(tree):
                    if id(node) in skip:
                        continue
                    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
                        if not (isinstance(node.value, ast.Name) and node.value.id in modules):  # re.compile
                            names.add(node.attr)
    return names


def test_every_field_is_read_by_the_code():
    """By attribute name (a weak guard: a dead field whose name some other object also has, like
    ``MjSpec.compile`` for the removed ``train.compile``, passes)."""
    reads = _reads()
    dead = [key for key, _, f in leaves() if f.name not in reads]
    assert not dead, f"config fields no code reads: {dead}"


@pytest.mark.parametrize("key", sorted(REMOVED_FIELDS))
def test_removed_fields_are_rejected_with_the_reason(key):
    assert key not in {k for k, _, _ in leaves()}
    with pytest.raises(ConfigError, match=f"{key} was removed"):
        load_config([f"{key}=true"])


def test_saved_configs_of_earlier_versions_still_load():
    text = to_yaml(load_config(["seed=3"]))
    old = text.replace("search:\n", "search:\n  use_value_prefix: true\n").replace(
        "train:\n", "train:\n  compile: false\n")
    assert "use_value_prefix: true" in old and "compile: false" in old
    assert from_yaml(old) == from_yaml(text)
