"""The README stays in sync with the code: config fields and defaults, presets, metric keys, the task example,
the implementation-detail numbering and the CI test command."""
from __future__ import annotations

import ast
import dataclasses
import os
import re
from types import SimpleNamespace

import pytest

from ezrobot.config import Config
from ezrobot.evaluate import summarize
from ezrobot.trainer import Trainer
from ezrobot.types import EpisodeStats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = ("env", "model", "search", "replay", "train", "optim", "eval", "log")


def _read(*parts: str) -> str:
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def readme() -> str:
    return _read("README.md")


def _section(text: str, title: str) -> str:
    """The body of the ``## title`` section (up to the next level-2 heading)."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def _table_rows(section: str):
    """First two cells of every table row whose first cell is a backticked name."""
    return re.findall(r"^\| `([^`]+)` \| ([^|]*(?:\\\|[^|]*)*) \|", section, re.M)


def _schema(obj=None, prefix: str = ""):
    """{dotted key: default} over the whole config tree."""
    obj = Config() if obj is None else obj
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.update(_schema(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def _parse_default(cell: str):
    text = cell.strip()
    assert text.startswith("`") and text.endswith("`"), f"default cell {cell!r} is not in backticks"
    text = text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def test_ci_test_command_and_quick_start_are_verbatim(readme):
    lines = readme.splitlines()
    assert 'pip install torch==2.13.0 -e ".[test]" && pytest' in lines
    assert "pip install torch==2.13.0 -e . && ezrobot train" in lines
    assert readme.index("## Quick start") < readme.index("## Presets")


def test_config_reference_lists_every_field_with_its_default(readme):
    rows = dict(_table_rows(_section(readme, "Config reference")))
    schema = _schema()
    assert set(rows) == set(schema), (f"undocumented: {sorted(set(schema) - set(rows))}; "
                                      f"not in the schema: {sorted(set(rows) - set(schema))}")
    for key, default in schema.items():
        assert _parse_default(rows[key]) == default, f"{key}: README says {rows[key]}, code has {default!r}"


def test_every_dotted_config_key_mentioned_exists(readme):
    schema = _schema()
    pattern = rf"(?<![\w/.<])((?:{'|'.join(GROUPS)})\.[a-z_][a-z0-9_]*)(?![\w(])"
    mentioned = {m for m in re.findall(pattern, readme) if not m.endswith((".py", ".md", ".yaml"))}
    assert mentioned, "no config keys found: the pattern is broken"
    unknown = sorted(k for k in mentioned if k not in schema)
    assert not unknown, f"README mentions config keys that do not exist: {unknown}"


def test_presets_table_lists_exactly_the_experiment_yamls(readme):
    from ezrobot.hydra_config import experiments, load_config

    rows = _table_rows(_section(readme, "Presets"))
    names = [name for name, _ in rows]
    assert sorted(names) == experiments()
    for name, task_cell in rows:
        task = load_config([f"experiment={name}"]).task
        assert task_cell.strip() == f"`{task}`", f"preset {name}: README task {task_cell}, YAML task {task}"


def test_metric_keys_are_documented(readme):
    section = _section(readme, "Logged metrics")
    documented = {name for name, _ in _table_rows(section)}
    episodes = [EpisodeStats(1.0, 3, 3, {"reward/near": 0.5}, True), EpisodeStats(2.0, 4, 4, {}, False)]
    emitted = set(summarize(episodes)) - {"reward/near"} | {"reward/<term>"}
    trainer_src = _read("ezrobot", "trainer.py")
    evaluate_row = trainer_src[trainer_src.index("def evaluate"):trainer_src.index("def run")]
    emitted |= set(re.findall(r'"([a-z_]+)":', evaluate_row))
    recent = SimpleNamespace(c=SimpleNamespace(train_terms=[{"reward/near": 1.0}, {"reward/near": 3.0}]))
    train_terms = Trainer._train_term_means(recent)
    assert train_terms == {"train/reward/near": 2.0}
    emitted |= {"train/reward/<term>"}
    for module in ("learner.py", "reanalyze.py"):
        emitted |= set(re.findall(r'"((?:loss|train|reanalyze)/[a-z_]+)"', _read("ezrobot", module)))
    assert {"env_steps", "loss/total", "reanalyze/td_horizon_mean", "eval_success_rate"} <= emitted
    assert emitted == documented, (f"emitted but undocumented: {sorted(emitted - documented)}; "
                                   f"documented but never emitted: {sorted(documented - emitted)}")


def test_define_task_section_is_docs_tasks_verbatim(readme):
    tasks_doc = _read("docs", "tasks.md").strip()
    body = "## Define a new task\n" + _section(readme, "Define a new task")
    assert body.strip() == tasks_doc


def test_implementation_numbering_matches_docs_page(readme):
    items = re.findall(r"^(\d+)\. \*\*(.+?)\*\*", _section(readme, "Implementation details"), re.M)
    assert [int(n) for n, _ in items] == list(range(1, len(items) + 1))
    page = re.findall(r"^\| (\d+) \| ([^|]+?) \|", _read("docs", "IMPLEMENTATION.md"), re.M)
    assert [(int(n), t.rstrip(".")) for n, t in items] == [(int(n), t.strip()) for n, t in page]


def test_relative_links_point_to_files(readme):
    links = re.findall(r"\]\(((?:docs|configs|ezrobot)/[^)#]+)\)", readme)
    assert links, "no relative links found"
    missing = [link for link in links if not os.path.exists(os.path.join(REPO, link))]
    assert not missing, f"README links to missing files: {missing}"


def test_tests_named_in_implementation_page_exist():
    page = _read("docs", "IMPLEMENTATION.md")
    named = re.findall(r"`(test_\w+\.py)(?:::(\w+))?`", page)
    assert named, "no tests named on docs/IMPLEMENTATION.md"
    missing = []
    for filename, function in named:
        path = os.path.join(REPO, "tests", filename)
        if not os.path.isfile(path):
            missing.append(filename)
        elif function and not re.search(rf"^def {function}\(", _read("tests", filename), re.M):
            missing.append(f"{filename}::{function}")
    assert not missing, f"docs/IMPLEMENTATION.md names tests that do not exist: {missing}"


def test_readme_sections_and_config_rows_appear_once(readme):
    """No section heading and no config-table row twice (a spliced edit once left two copies of half the
    README)."""
    headings = re.findall(r"^#{2,3} .+$", readme, flags=re.M)
    assert sorted(h for h in set(headings) if headings.count(h) > 1) == []
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \|", readme, flags=re.M)
    assert rows and sorted(r for r in set(rows) if rows.count(r) > 1) == []
