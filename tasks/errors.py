"""The task-layer error type (kept separate so every task module can raise it without import cycles)."""


class TaskError(ValueError):
    """A user-facing task definition error. The message is one line and names the offending file,
    the bad name or value and what is allowed."""
