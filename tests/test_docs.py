"""The docs stay in sync with the code: config fields and defaults (docs/CONFIG.md), presets (README), metric
keys (docs/CONFIG.md), the task example (docs/tasks.md), the implementation-detail numbering
(docs/IMPLEMENTATION.md), the module map (docs/ARCHITECTURE.md), links, the README's size and the CI test
command."""
from __future__ import annotations

import ast
import dataclasses
import glob
import os
import re
from types import SimpleNamespace

import pytest

from ezrobot.config import Config
from ezrobot.evaluate import summarize
from ezrobot.trainer import Trainer
from ezrobot.types import EpisodeStats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = ("env", "model", "search", "replay", "train", "optim", "eval", "log", "adapt")
# Folders that are not part of the repository's content (build outputs, environments, run directories).
SKIP_DIRS = {".git", ".ci-venv", ".venv", "venv", "runs", "build", "dist", "node_modules", "__pycache__",
             ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}


def _read(*parts: str) -> str:
    with open(os.path.join(REPO, *parts), encoding="utf-8") as f:
        return f.read()


def _doc_paths():
    """README.md and every Markdown page under docs/, relative to the repository root."""
    return ["README.md"] + sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))


@pytest.fixture(scope="module")
def readme() -> str:
    return _read("README.md")


@pytest.fixture(scope="module")
def config_doc() -> str:
    return _read("docs", "CONFIG.md")


def _section(text: str, title: str, level: int = 2) -> str:
    """The body of the ``## title`` section (up to the next heading of the same or a higher level)."""
    hashes = "#" * level
    match = re.search(rf"^{hashes} {re.escape(title)}\n(.*?)(?=^#{{1,{level}}} |\Z)", text, re.S | re.M)
    assert match, f"no '{hashes} {title}' section"
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


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(text: str):
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+)$", _without_code(text), re.M)}


def _without_code(text: str) -> str:
    """The text with fenced code blocks removed (a '#' comment in a block is not a heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


# ----------------------------------------------------------------------------------------------- README
def test_ci_test_command_and_quick_start_are_verbatim(readme):
    lines = readme.splitlines()
    assert 'pip install torch==2.13.0 -e ".[test]" && pytest' in lines
    assert "pip install torch==2.13.0 -e . && ezrobot train" in lines
    assert readme.index("## Quick start") < readme.index("## Presets")


def test_readme_is_short(readme):
    """The README is the front page: quick start, commands, presets, one results table and links. Reference
    material lives under docs/."""
    assert len(readme.splitlines()) < 300


def test_readme_links_every_docs_page(readme):
    pages = sorted(os.path.basename(p) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))
    unlinked = [p for p in pages if f"](docs/{p}" not in readme]
    assert not unlinked, f"README does not link to: {unlinked}"


def test_presets_table_lists_exactly_the_experiment_yamls(readme):
    from ezrobot.hydra_config import experiments, load_config

    rows = _table_rows(_section(readme, "Presets"))
    names = [name for name, _ in rows]
    assert sorted(names) == experiments()
    for name, task_cell in rows:
        task = load_config([f"experiment={name}"]).task
        assert task_cell.strip() == f"`{task}`", f"preset {name}: README task {task_cell}, YAML task {task}"


def test_results_table_rows_name_their_command(readme):
    """Every row of the README's results table gives the command that reproduces it, from a real preset."""
    from ezrobot.hydra_config import experiments

    rows = [r for r in re.findall(r"^\| `([a-z_0-9]+)`.*\| `(ezrobot [^`]+)` \|$", _section(readme, "Results"), re.M)]
    assert len(rows) >= 3, "the README's results table lost its rows or their commands"
    for preset, command in rows:
        assert preset in experiments(), f"results row for unknown preset {preset}"
        assert f"experiment={preset}" in command, f"results row {preset}: command {command!r} runs another preset"


def test_define_task_section_points_at_docs_tasks(readme):
    """The README keeps a short task section; the full example lives in docs/tasks.md (the test suite runs
    that example verbatim: tests/test_tasks.py)."""
    section = _section(readme, "Define your own task")
    assert "](docs/tasks.md)" in section
    tasks_doc = _read("docs", "tasks.md")
    assert tasks_doc.startswith("## Define a new task\n")
    assert re.search(r"```python\n.*class BallReach\(ShapedTask\):.*?```", tasks_doc, re.S)
    for command in re.findall(r"^(ezrobot train task=\S+)", section, re.M):
        assert command in tasks_doc, f"README runs {command!r}, docs/tasks.md does not"


def test_video_examples_use_the_default_run_name(readme):
    """A run_dir= in a video example of the README or docs/video.md is the name `ezrobot train` gives the
    quick start's run (the default experiment)."""
    from ezrobot.hydra_config import load_config

    default = load_config([]).run_dir
    for text in (readme, _read("docs", "video.md")):
        dirs = re.findall(r"^ezrobot video run_dir=(\S+)", text, re.M)
        assert dirs and set(dirs) == {default}, (dirs, default)


def test_layout_names_paths_that_exist(readme):
    """Every folder of the README's layout block, and every path named in its description (``nets/``,
    ``experiment/*.yaml``, ``config.yaml``, ...), exists in the repository."""
    block = re.search(r"```\n(.*?)```", _section(readme, "Layout"), re.S).group(1)
    folder, missing = None, []
    for line in block.splitlines():
        head = re.match(r"^(\S+/)\s", line)
        if head:
            folder = head.group(1)
            if not os.path.isdir(os.path.join(REPO, folder)):
                missing.append(folder)
        rest = line[len(head.group(1)):] if head else line
        for name in re.findall(r"(?<![\w/.-])([\w*.-]+/(?:[\w*.-]+)?|[\w*-]+\.(?:yaml|py|md))(?![\w/])", rest):
            if not glob.glob(os.path.join(REPO, folder, name)):
                missing.append(f"{folder}{name}")
    assert folder and not missing, f"README layout names missing paths: {missing}"


def test_commands_table_rows_appear_once(readme):
    """The command rows live in the Commands table only (no fragments pasted elsewhere)."""
    rows = re.findall(r"^\| `ezrobot [^`]+` \|.*$", readme, re.M)
    section = _section(readme, "Commands")
    assert rows and all(row in section for row in rows) and len(rows) == len(set(rows))


def test_tasks_doc_shows_repeat_and_combine_rules():
    """docs/tasks.md gives the action repeat's source with the base class's default and every reward rule."""
    from ezrobot.tasks import ShapedTask
    from ezrobot.tasks.base import REWARD_RULES

    doc = _read("docs", "tasks.md")
    section = _section(doc, "Action repeat and decision period", level=3)
    assert "`env.action_repeat`" in section and "`default_action_repeat`" in section
    assert f"which is {ShapedTask.default_action_repeat} unless" in section
    rows = re.findall(r"^\| `(\w+)`[^|]*\| `([^`]+)`", _section(doc, "Combining the terms", level=3), re.M)
    assert sorted(rule for rule, _ in rows) == sorted(REWARD_RULES)  # each with its formula


# ------------------------------------------------------------------------------------------ docs/CONFIG.md
def test_config_reference_lists_every_field_with_its_default(config_doc):
    rows = dict(_table_rows(_section(config_doc, "Config reference")))
    schema = _schema()
    assert set(rows) == set(schema), (f"undocumented: {sorted(set(schema) - set(rows))}; "
                                      f"not in the schema: {sorted(set(rows) - set(schema))}")
    for key, default in schema.items():
        assert _parse_default(rows[key]) == default, f"{key}: docs/CONFIG.md says {rows[key]}, code has {default!r}"


@pytest.mark.parametrize("path", _doc_paths())
def test_every_dotted_config_key_mentioned_exists(path):
    text = _read(path)
    schema = _schema()
    # A config key is a leaf: `replay.buffer.Replay` (a code path) is not one, `search.variant.` (end of a
    # sentence) is.
    pattern = rf"(?<![\w/.<])((?:{'|'.join(GROUPS)})\.[a-z_][a-z0-9_]*)(?![\w(]|\.\w)"
    mentioned = {m for m in re.findall(pattern, text) if not m.endswith((".py", ".md", ".yaml"))}
    if path in ("README.md", "docs/CONFIG.md"):
        assert mentioned, "no config keys found: the pattern is broken"
    unknown = sorted(k for k in mentioned if k not in schema)
    assert not unknown, f"{path} mentions config keys that do not exist: {unknown}"


def test_metric_keys_are_documented(config_doc):
    section = _section(config_doc, "Logged metrics")
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
    for module in ("learner.py", "reanalyze.py", "distributed/trainer.py"):
        emitted |= set(re.findall(r'"((?:loss|train|reanalyze|distributed)/[a-z_]+)"', _read("ezrobot", module)))
    assert {"env_steps", "loss/total", "reanalyze/td_horizon_mean", "eval_success_rate"} <= emitted
    assert emitted == documented, (f"emitted but undocumented: {sorted(emitted - documented)}; "
                                   f"documented but never emitted: {sorted(documented - emitted)}")


# ---------------------------------------------------------------------------------- docs/IMPLEMENTATION.md
def test_implementation_numbering_matches_its_table():
    page = _read("docs", "IMPLEMENTATION.md")
    items = re.findall(r"^(\d+)\. \*\*(.+?)\*\*", _section(page, "The details"), re.M)
    assert [int(n) for n, _ in items] == list(range(1, len(items) + 1))
    rows = re.findall(r"^\| (\d+) \| ([^|]+?) \|", _section(page, "Where each detail lives"), re.M)
    assert [(int(n), t.rstrip(".")) for n, t in items] == [(int(n), t.strip()) for n, t in rows]


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


def test_source_files_named_in_implementation_page_exist():
    """Backticked `dir/file.py` paths on the page name files of the package (ezrobot/, envs/ or tasks/)."""
    page = _read("docs", "IMPLEMENTATION.md")
    named = set(re.findall(r"`((?:[a-z_]+/)+[a-z_0-9]+\.py)`", page))
    assert named, "no source files named on docs/IMPLEMENTATION.md"
    roots = ("", "ezrobot")
    missing = sorted(p for p in named if p.split("/")[0] != "tests"
                     and not any(os.path.isfile(os.path.join(REPO, r, p)) for r in roots))
    assert not missing, f"docs/IMPLEMENTATION.md names files that do not exist: {missing}"


def _module_file(dotted: str):
    """The source file of ``ezrobot.<dotted>`` (``replay.buffer`` -> ezrobot/replay/buffer.py; ``tasks.base``
    -> tasks/base.py, as envs/, tasks/ and configs/ are installed as ezrobot.envs, ...), or None."""
    parts = dotted.split(".")
    top = REPO if parts[0] in ("envs", "tasks", "configs") else os.path.join(REPO, "ezrobot")
    base = os.path.join(top, *parts)
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def _bound_names(node) -> set:
    """Names bound directly in a module or class body: defs, classes, assignments, imports."""
    names = set()
    for child in getattr(node, "body", []):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(child.name)
        elif isinstance(child, ast.Assign):
            names |= {t.id for t in child.targets if isinstance(t, ast.Name)}
        elif isinstance(child, ast.AnnAssign) and isinstance(child.target, ast.Name):
            names.add(child.target.id)
        elif isinstance(child, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in child.names}
    return names


def _all_names(path: str) -> set:
    """Every def, class and assigned name anywhere in a file (nested kernels and helpers included)."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    return {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))} | \
        {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}


def _resolves(dotted: str) -> bool:
    """``learner.Learner.update``: the longest module prefix is a file of ezrobot/, and each remaining part is
    bound in the module, then in the class before it."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        path = _module_file(".".join(parts[:cut]))
        if path:
            node = ast.parse(open(path, encoding="utf-8").read())
            for name in parts[cut:]:
                if name not in _bound_names(node):
                    return False
                node = next((c for c in node.body if isinstance(c, ast.ClassDef) and c.name == name), None)
                if node is None and name != parts[-1]:
                    return False
            return True
    return True   # not a module path (e.g. `EnvSpec.discount`): nothing to check


def test_code_named_in_implementation_table_exists():
    """The code column of the table names real code: `module.Class.method` paths resolve, and the names
    after a `dir/file.py` are defined in that file."""
    table = _section(_read("docs", "IMPLEMENTATION.md"), "Where each detail lives")
    missing = []
    for row in re.findall(r"^\| \d+ \| [^|]+ \| (.+?) \| ", table, re.M):
        current = None
        for token in re.findall(r"`([A-Za-z_][\w./]*)`", row):
            if token.endswith(".py"):
                path = os.path.join(REPO, "ezrobot", token)
                path = path if os.path.isfile(path) else os.path.join(REPO, token)
                current = path if os.path.isfile(path) else None
            elif "." in token:
                current = None
                if not _resolves(token):
                    missing.append(token)
            elif current is not None and token not in _all_names(current):
                missing.append(f"{os.path.relpath(current, REPO)}: {token}")
    assert not missing, f"docs/IMPLEMENTATION.md names code that does not exist: {missing}"


@pytest.mark.parametrize("path", _doc_paths())
def test_python_examples_import_what_exists(path):
    """``from ezrobot.x import a, b`` in a page's python blocks: the module exists and binds a and b (or they
    are its submodules)."""
    blocks = re.findall(r"^```python\n(.*?)^```", _read(path), re.S | re.M)
    missing = []
    for block in blocks:
        for module, names in re.findall(r"^from ezrobot\.([\w.]+) import ([\w, ]+)$", block, re.M):
            file = _module_file(module)
            if file is None:
                missing.append(f"ezrobot.{module}")
                continue
            bound = _bound_names(ast.parse(open(file, encoding="utf-8").read()))
            for name in (n.strip() for n in names.split(",")):
                if name not in bound and _module_file(f"{module}.{name}") is None:
                    missing.append(f"ezrobot.{module}.{name}")
    assert not missing, f"{path} imports what does not exist: {missing}"


# ------------------------------------------------------------------------------------ docs/ARCHITECTURE.md
def _package_modules():
    """Every module of ezrobot/ as a path relative to ezrobot/ (``learner.py``, ``mcts/tree.py``), without
    ``__init__.py`` / ``__main__.py``."""
    out = set()
    for path in glob.glob(os.path.join(REPO, "ezrobot", "**", "*.py"), recursive=True):
        rel = os.path.relpath(path, os.path.join(REPO, "ezrobot")).replace(os.sep, "/")
        if os.path.basename(rel) not in ("__init__.py", "__main__.py"):
            out.add(rel)
    return out


def _module_map(text: str):
    """The module paths named in the ``## Module map`` block: `dir/` opens a folder, names in it follow
    indented on the next lines (``tree.py, search.py``) or on the same line."""
    block = re.search(r"^## Module map\n.*?^```\n(.*?)^```", text, re.S | re.M)
    assert block, "docs/ARCHITECTURE.md has no '## Module map' code block"
    named, folder_stack = set(), []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        head = re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
        folder_stack = [(i, f) for i, f in folder_stack if i < indent]
        prefix = "".join(f for _, f in folder_stack)
        for token in re.split(r"[,\s]+", head):
            if token.endswith("/"):
                folder_stack.append((indent, token))
            elif token.endswith(".py"):
                named.add(prefix + token)
    return named


def test_architecture_module_map_matches_the_package():
    text = _read("docs", "ARCHITECTURE.md")
    named = {p[len("ezrobot/"):] for p in _module_map(text) if p.startswith("ezrobot/")}
    modules = _package_modules()
    assert named, "the module map names no ezrobot/ modules"
    assert not named - modules, f"docs/ARCHITECTURE.md names modules that do not exist: {sorted(named - modules)}"
    assert not modules - named, f"modules missing from docs/ARCHITECTURE.md: {sorted(modules - named)}"


def test_architecture_module_paths_in_text_exist():
    """Backticked paths of Python files anywhere on the page exist (relative to the repository root or to
    ezrobot/)."""
    text = _read("docs", "ARCHITECTURE.md")
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_0-9]+\.py)`", text))
    missing = sorted(p for p in named if not any(os.path.isfile(os.path.join(REPO, r, p)) for r in ("", "ezrobot")))
    assert not missing, f"docs/ARCHITECTURE.md names files that do not exist: {missing}"


def test_architecture_diagram_names_resolve():
    """Paths (`mcts/slots.LatentPool`, `commands/train.py`, `nets/`) and dotted names
    (`reanalyze.Reanalyzer.make_batch`) on the page's diagrams and text name real folders, modules, classes
    and functions."""
    text = _read("docs", "ARCHITECTURE.md")
    missing = []
    folders = "commands|mcts|nets|replay|bench|envs|tasks|configs|adapt"
    for path in set(re.findall(rf"(?<![\w/])((?:{folders})/[\w/]*(?:\.[A-Za-z_]\w*)*)", text)):
        module, _, names = path.partition(".")
        if names == "py":
            names = ""
        module = module.rstrip("/")
        is_dir = any(os.path.isdir(os.path.join(REPO, r, module)) for r in ("", "ezrobot"))
        if is_dir and not names:
            continue
        if not any(os.path.isfile(os.path.join(REPO, r, module + ".py")) for r in ("", "ezrobot")):
            missing.append(path)
        elif names and not _resolves(module.replace("/", ".") + "." + names):
            missing.append(path)
    for dotted in set(re.findall(r"(?<![\w/.])([a-z_]+(?:\.[A-Za-z_]\w*)+)", text)):
        if not dotted.endswith((".py", ".md", ".yaml", ".jsonl", ".csv")) and not _resolves(dotted):
            missing.append(dotted)
    assert not missing, f"docs/ARCHITECTURE.md names code that does not exist: {sorted(missing)}"


def _md_tables(text: str):
    """Every Markdown table of ``text`` as (header cells, rows of cells)."""
    tables = []
    for block in re.findall(r"((?:^\|.*\|\n)+)", text, re.M):
        lines = [[c.strip() for c in line.strip().strip("|").split("|")] for line in block.strip().splitlines()]
        if len(lines) > 2 and set("".join(lines[1])) <= set("-: "):
            tables.append((lines[0], lines[2:]))
    return tables


def _number(cell: str):
    cell = cell.strip().lstrip("~").replace(",", "")
    return None if cell in ("", "–", "-", "—") else float(cell)


def test_references_tables_match_the_published_data():
    """docs/REFERENCES.md and ezrobot/bench/published.py hold the same published numbers."""
    from ezrobot.bench import published

    page = _read("docs", "REFERENCES.md")
    tables = _md_tables(page)

    def table_with(*header):
        found = [t for t in tables if all(h in t[0] for h in header)]
        assert len(found) == 1, f"docs/REFERENCES.md: expected one table with columns {header}"
        return found[0]

    head, rows = table_with("game", *published.ATARI_COLUMNS)
    assert sorted(r[0] for r in rows) == sorted(published.ATARI_GAMES)
    for row in rows:
        for column in published.ATARI_COLUMNS:
            assert _number(row[head.index(column)]) == published.ATARI100K[row[0]][column], (row[0], column)

    head, rows = table_with("task", "TD-MPC2", "DreamerV3", "SAC")
    assert {r[0] for r in rows} == set(published.DMC_PROPRIO_200K_ENV)
    for row in rows:
        for method, value in published.DMC_PROPRIO_200K_ENV[row[0]].items():
            assert _number(row[head.index(method)]) == value, (row[0], method)

    head, rows = table_with("task", "proprio", "vision")
    ez = {r[0]: (_number(r[head.index("proprio")]), _number(r[head.index("vision")])) for r in rows}
    for task, scores in published.DMC_PROPRIO.items():
        assert ez[task][0] == scores["EZ-V2"], task
    for task, scores in published.DMC_PIXELS.items():
        assert ez[task][1] == scores["EZ-V2@200k"], task

    head, rows = table_with("method", *published.PIXEL_TASKS)
    by_method = {r[0]: r for r in rows}
    for method in ("CURL", "DrQ"):
        for task in published.PIXEL_TASKS:
            assert _number(by_method[method][head.index(task)]) == published.DMC_PIXELS[task][method], (method, task)


# -------------------------------------------------------------------------------------------- all the docs
@pytest.mark.parametrize("path", _doc_paths())
def test_relative_links_point_to_files(path):
    text = _without_code(_read(path))
    base = os.path.dirname(os.path.join(REPO, path))
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    missing = []
    for link in links:
        if re.match(r"^[a-z]+:", link):      # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        file = os.path.normpath(os.path.join(base, target)) if target else os.path.join(REPO, path)
        if not os.path.exists(file):
            missing.append(link)
        elif anchor and file.endswith(".md") and anchor not in _anchors(open(file, encoding="utf-8").read()):
            missing.append(link)
    assert not missing, f"{path} links to missing files or headings: {missing}"


def test_readme_links_resolve(readme):
    """The README has relative links at all (the per-file check above would pass on a page without any)."""
    assert re.findall(r"\]\(((?:docs|configs|ezrobot)/[^)#]+)\)", readme), "no relative links found"


@pytest.mark.parametrize("path", _doc_paths())
def test_sections_appear_once(path):
    """No section heading twice in one page (a spliced edit once left two copies of half the README)."""
    headings = re.findall(r"^#{2,3} .+$", _without_code(_read(path)), flags=re.M)
    assert sorted(h for h in set(headings) if headings.count(h) > 1) == []


def test_config_rows_appear_once(config_doc):
    rows = re.findall(r"^\| `([a-z_]+\.[a-z_.]+)` \|", config_doc, flags=re.M)
    assert rows and sorted(r for r in set(rows) if rows.count(r) > 1) == []


def _repository_files():
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            if name.endswith((".md", ".py", ".yaml", ".yml", ".toml", ".cfg", ".txt", ".json")) or "." not in name:
                yield os.path.join(root, name)


def test_no_file_points_outside_the_repository():
    """The project's references live in docs/REFERENCES.md; nothing may point at notes kept outside the
    repository (the strings are assembled so that this file does not match itself)."""
    forbidden = ("../" + "shared", "shared/" + "REFERENCE")
    offenders = []
    for path in _repository_files():
        try:
            text = open(path, encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        offenders += [f"{os.path.relpath(path, REPO)}: {s}" for s in forbidden if s in text]
    assert not offenders, f"files pointing outside the repository: {offenders}"


def test_references_page_has_its_numbered_sections():
    """Code and docs cite 'REFERENCES §n'; the page keeps those section numbers."""
    page = _read("docs", "REFERENCES.md")
    numbers = [int(n) for n in re.findall(r"^## §(\d+) ", page, re.M)]
    assert numbers == [1, 2, 3, 4, 5, 6]
    atari = _section(page, "Per-game scores", level=3)
    games = re.findall(r"^\| ([A-Z][A-Za-z]+) \|", atari, re.M)
    assert len(games) == 26 and len(set(games)) == 26
