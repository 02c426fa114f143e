"""Scene loading for tasks: MJCF files, robot models shipped with dm_control / gymnasium, MuJoCo Menagerie.

Every loader returns an editable ``mujoco.MjSpec``; :func:`compile_physics` turns it into a dm_control
``Physics``. All failures raise :class:`TaskError` naming the file, the bad name and what is allowed.
"""
from __future__ import annotations

import os
import re
from typing import List, Optional, Tuple

import mujoco
import numpy as np
from dm_control.mujoco import Physics
from dm_control.mujoco.wrapper import core

from .errors import TaskError

_KINDS = {
    "body": mujoco.mjtObj.mjOBJ_BODY,
    "site": mujoco.mjtObj.mjOBJ_SITE,
    "joint": mujoco.mjtObj.mjOBJ_JOINT,
    "geom": mujoco.mjtObj.mjOBJ_GEOM,
    "camera": mujoco.mjtObj.mjOBJ_CAMERA,
    "actuator": mujoco.mjtObj.mjOBJ_ACTUATOR,
}
MENAGERIE_PREFIX = "menagerie:"


def plural(kind: str) -> str:
    """``body`` -> ``bodies``, ``site`` -> ``sites``."""
    return "bodies" if kind == "body" else kind + "s"


def _one_line(message: str) -> str:
    return "; ".join(part.strip() for part in str(message).strip().splitlines() if part.strip())


def load_xml(path: str) -> mujoco.MjSpec:
    """Parses an MJCF file. Raises TaskError with the file and MuJoCo's line number on a parse error."""
    if not os.path.isfile(path):
        raise TaskError(f"scene file {path} does not exist")
    try:
        return mujoco.MjSpec.from_file(path)
    except ValueError as err:
        raise TaskError(f"{path}: MJCF parse error: {_one_line(err)}") from None


def from_xml_string(xml: str, source: str, assets: Optional[dict] = None) -> mujoco.MjSpec:
    """Parses MJCF text defined in ``source`` (a task file); parse errors name it and the XML line."""
    try:
        return mujoco.MjSpec.from_string(xml, assets=assets or {})
    except ValueError as err:
        message = _one_line(err)
        raise TaskError(f"{source}: MJCF parse error in the task's XML{_file_line(xml, source, message)}: "
                        f"{message}") from None


def _file_line(xml: str, source: str, message: str) -> str:
    """`` (line N of the file)`` when the XML text is written verbatim in ``source``, else ``""``."""
    match = re.search(r"line(?: number=|\s+)(\d+)", message, re.IGNORECASE)
    try:
        with open(source) as f:
            text = f.read()
    except OSError:
        return ""
    start = text.find(xml)
    if match is None or start < 0:
        return ""
    return f" (line {text.count(chr(10), 0, start) + int(match.group(1))} of {os.path.basename(source)})"


def compile_physics(spec: mujoco.MjSpec, source: str) -> Physics:
    """Compiles ``spec`` into a dm_control Physics; compile errors name ``source``."""
    if not isinstance(spec, mujoco.MjSpec):
        raise TaskError(f"{source}: build_scene() must return a mujoco.MjSpec, got {type(spec).__name__}")
    try:
        model = spec.compile()
    except ValueError as err:
        raise TaskError(f"{source}: MJCF compile error: {_one_line(err)}") from None
    return Physics.from_model(core.MjModel(model))


def names_of(model, kind) -> List[str]:
    """Names of every object of ``kind`` (``"site"``… or an ``mjtObj``) in ``model`` (raw or wrapped)."""
    raw = getattr(model, "ptr", model)
    obj = _KINDS[kind] if isinstance(kind, str) else kind
    count = {mujoco.mjtObj.mjOBJ_BODY: raw.nbody, mujoco.mjtObj.mjOBJ_SITE: raw.nsite,
             mujoco.mjtObj.mjOBJ_JOINT: raw.njnt, mujoco.mjtObj.mjOBJ_GEOM: raw.ngeom,
             mujoco.mjtObj.mjOBJ_CAMERA: raw.ncam, mujoco.mjtObj.mjOBJ_ACTUATOR: raw.nu}[obj]
    return [mujoco.mj_id2name(raw, obj, i) or "" for i in range(count)]


def require(physics: Physics, kind: str, name: str, source: str) -> int:
    """Returns the id of the ``kind`` object called ``name``.

    Raises:
        TaskError: naming ``source``, the unknown name and the available names of that kind.
    """
    if kind not in _KINDS:
        raise TaskError(f"{source}: unknown object kind {kind!r}; allowed: {', '.join(_KINDS)}")
    names = names_of(physics.model, kind)
    if name not in names:
        shown = [n for n in names if n]
        raise TaskError(f"{source}: unknown {kind} {name!r}; available {plural(kind)}: {', '.join(shown) or '(none)'}")
    return names.index(name)


def dm_control_asset(*parts: str) -> str:
    """Path of a file shipped inside the installed dm_control package, e.g. ``("suite", "reacher.xml")``."""
    import dm_control

    path = os.path.join(os.path.dirname(dm_control.__file__), *parts)
    if not os.path.exists(path):
        raise TaskError(f"dm_control asset {path} is missing; reinstall dm_control>=1.0.20")
    return path


def gymnasium_asset(filename: str) -> str:
    """Path of one of gymnasium's MuJoCo model files (``gymnasium/envs/mujoco/assets``)."""
    import gymnasium

    folder = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets")
    path = os.path.join(folder, filename)
    if not os.path.isfile(path):
        available = sorted(f for f in os.listdir(folder) if f.endswith(".xml")) if os.path.isdir(folder) else []
        raise TaskError(f"gymnasium asset {filename!r} not found in {folder}; available: {', '.join(available)}")
    return path


def parse_menagerie(ref: str) -> Tuple[str, Optional[str]]:
    """Splits ``menagerie:<name>[/<entry>]`` into ``(name, entry or None)``."""
    if not ref.startswith(MENAGERIE_PREFIX) or not ref[len(MENAGERIE_PREFIX):]:
        raise TaskError(f"robot reference {ref!r} must look like 'menagerie:<name>' or 'menagerie:<name>/<entry>'")
    name, _, entry = ref[len(MENAGERIE_PREFIX):].partition("/")
    return name, entry or None


def menagerie_spec(ref: str) -> mujoco.MjSpec:
    """Loads a MuJoCo Menagerie robot (``menagerie:<name>[/<entry>]``, default: the robot without scene).

    Uses the ``mujoco-menagerie`` package, which honours ``MENAGERIE_ROOT`` (a local Menagerie checkout:
    ``$MENAGERIE_ROOT/<name>/<entry file>``), ``MENAGERIE_CACHE_DIR`` and ``MENAGERIE_BASE_URL``; without
    ``MENAGERIE_ROOT`` it downloads the model on first use.

    Raises:
        TaskError: package missing, unknown robot or entry (with suggestions), or the model cannot be fetched.
    """
    name, entry = parse_menagerie(ref)
    try:
        import mujoco_menagerie as mm
    except ImportError:
        raise TaskError(f"robot {ref!r} needs the mujoco-menagerie package: pip install 'ezrobot[menagerie]'") from None
    try:
        robot = mm.get(name)
        entry_name = entry or robot.default_model
        robot.entry(entry_name)
        path = robot.xml(entry_name)
    except mm.UnknownRobotError as err:
        raise TaskError(f"robot {ref!r}: {err} ('python -m mujoco_menagerie names' lists them)") from None
    except mm.UnknownEntryPointError as err:
        raise TaskError(f"robot {ref!r}: {err}") from None
    except mm.MenagerieError as err:
        root = os.environ.get("MENAGERIE_ROOT")
        where = (f"MENAGERIE_ROOT={root}" if root
                 else "the download cache (set MENAGERIE_ROOT to a Menagerie checkout when offline)")
        raise TaskError(f"robot {ref!r}: could not fetch Menagerie model {name!r} from {where}: "
                        f"{_one_line(err)}") from None
    return load_xml(str(path))


def lock_hinge(spec: mujoco.MjSpec, joint_name: str, angle: float) -> None:
    """Removes hinge ``joint_name`` and welds its body at ``angle`` radians about the hinge axis.

    The hinge must sit at its body's origin (true for the Jaco arm joints).
    """
    joint = spec.joint(joint_name)
    if joint is None:
        raise TaskError(f"cannot lock unknown joint {joint_name!r}; joints: {[j.name for j in spec.joints]}")
    if joint.type != mujoco.mjtJoint.mjJNT_HINGE or np.any(np.abs(joint.pos) > 1e-9):
        raise TaskError(f"joint {joint_name!r} must be a hinge at its body's origin to be locked")
    body = joint.parent
    turn = np.zeros(4)
    axis = np.asarray(joint.axis, dtype=np.float64)
    mujoco.mju_axisAngle2Quat(turn, axis / np.linalg.norm(axis), float(angle))
    quat = np.zeros(4)
    mujoco.mju_mulQuat(quat, np.asarray(body.quat, dtype=np.float64), turn)
    body.quat = quat
    spec.delete(joint)
