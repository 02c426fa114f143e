"""ezrobot task registry: reward-shaped MuJoCo tasks as ``dm_control.rl.control.Environment``.

``load(name_or_path, seed=..., **params)`` builds a registered task (``list_tasks()``) or the single
:class:`ShapedTask` subclass defined in a user file ``path/to/task.py``. Weighted-sum reward scales come
from ``params["scales"]``, else ``configs/task/<name>.yaml`` (registered tasks) or ``<task file>.yaml``
(user files), else the class attribute ``scales``.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import math
import os
import sys
from typing import Dict, List, Mapping, Optional, Tuple, Type

from .base import REWARD_RULES, ShapedTask, combine_terms, make_environment
from .errors import TaskError

__all__ = ["BUILTIN_TASKS", "ShapedTask", "TaskError", "TaskInfo", "combine_terms", "list_tasks", "load",
           "task_class", "task_info"]

# Registered task name -> "module:Class" inside this package.
BUILTIN_TASKS: Dict[str, str] = {
    "jaco_reach": "arm_reach:ArmReach",
    "jaco_push": "jaco_push:JacoPush",
    "manipulator_bring_ball": "manipulator_bring:BringBall",
    "ant_walk": "ant_walk:AntWalk",
}
_RESERVED_PARAMS = ("scales", "time_limit")


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """What ``ezrobot tasks list`` shows about one task.

    Attributes:
        name: Registry name (or file stem of a user task).
        tags: Registry tags.
        obs_dim: Size of the flattened proprio observation.
        action_dim: Number of actions (each in ``[-1, 1]``).
        reward_terms: Reward term names.
        has_success: Whether the task declares a success criterion.
        observations: Proprio feature name -> size.
        default_camera: Camera used for pixels.
        episode_steps: Control (simulator) steps per episode.
        default_action_repeat: Control steps per agent step suggested by the task.
        source: The task's Python file.
    """

    name: str
    tags: Tuple[str, ...]
    obs_dim: int
    action_dim: int
    reward_terms: Tuple[str, ...]
    has_success: bool
    observations: Dict[str, int]
    default_camera: str
    episode_steps: int
    default_action_repeat: int
    source: str

    def to_json(self) -> dict:
        """JSON-ready dict with the keys of ``ezrobot tasks list --json``."""
        return {"name": self.name, "tags": list(self.tags), "obs": self.obs_dim, "action_dim": self.action_dim,
                "reward_terms": list(self.reward_terms), "has_success": self.has_success,
                "observations": dict(self.observations), "camera": self.default_camera,
                "episode_steps": self.episode_steps, "action_repeat": self.default_action_repeat}


def _is_path(name_or_path: str) -> bool:
    return name_or_path.endswith(".py") or os.sep in name_or_path or "/" in name_or_path


def _import_file(path: str):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise TaskError(f"task file {path} does not exist")
    digest = hashlib.sha1(path.encode()).hexdigest()[:10]
    module_name = f"ezrobot_user_task_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        del sys.modules[module_name]
        raise TaskError(f"{path}: syntax error at line {err.lineno}: {err.msg}") from None
    return module


def task_class(name_or_path: str) -> Type[ShapedTask]:
    """The task class of a registered name or of a user file (exactly one ShapedTask subclass in it)."""
    if not _is_path(name_or_path):
        if name_or_path not in BUILTIN_TASKS:
            close = difflib.get_close_matches(name_or_path, list(BUILTIN_TASKS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TaskError(f"unknown task {name_or_path!r}.{hint} Registered: {', '.join(sorted(BUILTIN_TASKS))}; "
                            "or pass a task file path/to/task.py")
        module_name, class_name = BUILTIN_TASKS[name_or_path].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module_name}"), class_name)
    module = _import_file(name_or_path)
    found = [obj for obj in vars(module).values() if inspect.isclass(obj) and issubclass(obj, ShapedTask)
             and obj.__module__ == module.__name__]
    if len(found) != 1:
        raise TaskError(f"{module.__file__}: a task file must define exactly one ShapedTask subclass, found "
                        f"{[c.__name__ for c in found] or 'none'}")
    return found[0]


def _task_name(cls: Type[ShapedTask], name_or_path: str) -> str:
    if cls.name:
        return cls.name
    return os.path.splitext(os.path.basename(name_or_path))[0]


def _scales_file(cls: Type[ShapedTask], name: str, registered: bool) -> str:
    if not registered:
        return os.path.splitext(inspect.getfile(cls))[0] + ".yaml"
    try:
        from importlib import resources

        return str(resources.files("ezrobot.configs").joinpath("task", f"{name}.yaml"))
    except ModuleNotFoundError:
        return os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "task", f"{name}.yaml")


def _read_scales_yaml(path: str) -> Dict[str, float]:
    import yaml

    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TaskError(f"{path}: YAML parse error{where}: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict) or set(data) != {"scales"} or not isinstance(data["scales"], dict):
        raise TaskError(f"{path}: expected a mapping with the single key 'scales: {{term: weight}}', "
                        f"got {data!r}")
    return data["scales"]


def resolve_scales(cls: Type[ShapedTask], name: str, registered: bool,
                   override: Optional[Mapping[str, float]]) -> Tuple[Optional[Dict[str, float]], str]:
    """Finds and validates the weighted-sum scales of a task.

    Returns:
        ``(scales or None, where they came from)``; ``None`` for ``product`` / ``staged`` rules.
    """
    source = inspect.getfile(cls)
    path = _scales_file(cls, name, registered)
    if override is not None:
        scales, origin = dict(override), "the scales parameter"
    elif os.path.isfile(path):
        scales, origin = _read_scales_yaml(path), path
    elif cls.scales is not None:
        scales, origin = dict(cls.scales), f"{source} (class attribute scales)"
    else:
        scales, origin = None, path
    if cls.reward_rule != "weighted_sum":
        if scales is not None:
            raise TaskError(f"{origin}: scales are only used by reward_rule 'weighted_sum'; task {name!r} "
                            f"uses {cls.reward_rule!r}")
        return None, origin
    if scales is None:
        raise TaskError(f"{source}: reward_rule 'weighted_sum' needs scales: create {path} with "
                        f"'scales: {{{', '.join(f'{t}: 1.0' for t in cls.reward_terms)}}}' or set the class attribute")
    for term in cls.reward_terms:
        if term not in scales:
            raise TaskError(f"{origin}: reward term {term!r} has no scale; scales needed for: "
                            f"{', '.join(cls.reward_terms)}")
    for term, value in scales.items():
        if term not in cls.reward_terms:
            raise TaskError(f"{origin}: scale {term!r} has no reward term; terms: {', '.join(cls.reward_terms)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise TaskError(f"{origin}: scale {term}={value!r} must be a finite number >= 0")
    if sum(scales.values()) <= 0:
        raise TaskError(f"{origin}: scales {scales} sum to 0; at least one must be > 0")
    return {t: float(scales[t]) for t in cls.reward_terms}, origin


def _check_class(cls: Type[ShapedTask]) -> None:
    source = inspect.getfile(cls)
    terms = tuple(cls.reward_terms)
    if not terms or len(set(terms)) != len(terms) or not all(isinstance(t, str) and t for t in terms):
        raise TaskError(f"{source}: reward_terms must be a non-empty tuple of unique names, got {terms!r}")
    if cls.reward_rule not in REWARD_RULES:
        raise TaskError(f"{source}: unknown reward_rule {cls.reward_rule!r}; allowed: {', '.join(REWARD_RULES)}")
    if not isinstance(cls.default_action_repeat, int) or cls.default_action_repeat < 1:
        raise TaskError(f"{source}: default_action_repeat must be an int >= 1, got {cls.default_action_repeat!r}")


def _construct(cls: Type[ShapedTask], seed: Optional[int], params: Dict[str, object]) -> ShapedTask:
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "random")]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TaskError(f"{inspect.getfile(cls)}: unknown task parameter(s) {unknown}; allowed: "
                        f"{', '.join(allowed + list(_RESERVED_PARAMS))}")
    return cls(random=seed, **params)


def load(name_or_path: str, *, seed: Optional[int] = None, **params):
    """Builds a task environment.

    Args:
        name_or_path: A registered task name (``list_tasks()``) or a task file ``path/to/task.py``.
        seed: Seed of the task's random state (initial-state randomisation); same seed, same episodes.
        **params: Task constructor parameters, plus ``scales`` (term -> weight, overrides the YAML) and
            ``time_limit`` (episode seconds, overrides the task's).

    Returns:
        A ``dm_control.rl.control.Environment`` whose ``task`` is a :class:`ShapedTask`.
    """
    cls = task_class(name_or_path)
    _check_class(cls)
    name = _task_name(cls, name_or_path)
    scales_override = params.pop("scales", None)
    time_limit = params.pop("time_limit", None)
    scales, _ = resolve_scales(cls, name, not _is_path(name_or_path), scales_override)
    task = _construct(cls, seed, params)
    task.resolved_scales = scales
    return make_environment(task, time_limit)


_INFO_CACHE: Dict[str, TaskInfo] = {}


def task_info(name_or_path: str) -> TaskInfo:
    """Builds the task once (seed 0) and describes it."""
    if name_or_path not in _INFO_CACHE:
        env = load(name_or_path, seed=0)
        task = env.task
        obs = {k: int(v.shape[0]) for k, v in env.observation_spec().items()}
        steps = int(round(task.episode_time_limit / task.control_timestep))
        _INFO_CACHE[name_or_path] = TaskInfo(
            name=_task_name(type(task), name_or_path), tags=tuple(task.tags), obs_dim=sum(obs.values()),
            action_dim=int(env.action_spec().shape[0]), reward_terms=tuple(task.reward_terms),
            has_success=task.has_success, observations=obs, default_camera=task.default_camera,
            episode_steps=steps, default_action_repeat=task.default_action_repeat, source=task.source_file)
    return _INFO_CACHE[name_or_path]


def list_tasks(tag: Optional[str] = None) -> List[TaskInfo]:
    """Registered tasks (sorted by name), optionally only those carrying ``tag``."""
    infos = [task_info(name) for name in sorted(BUILTIN_TASKS)]
    return [info for info in infos if tag is None or tag in info.tags]
