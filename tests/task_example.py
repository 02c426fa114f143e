"""The task-file example of the docs ("## Define a new task" in README.md or docs/tasks.md), for the tests
that train or break it."""
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def task_example_source() -> str:
    """The Python block of the "Define a new task" section, verbatim."""
    readme = os.path.join(REPO, "README.md")
    text = open(readme).read() if os.path.isfile(readme) else ""
    if "## Define a new task" not in text:
        text = open(os.path.join(REPO, "docs", "tasks.md")).read()
    section = text.split("## Define a new task", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block in the 'Define a new task' section"
    return match.group(1)
