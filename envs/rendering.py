"""MuJoCo rendering backend choice (``MUJOCO_GL``) and render presets.

``MUJOCO_GL`` is read once, when ``dm_control`` (its ``_render`` module) or ``mujoco``'s GL context is
first imported, so :func:`select_backend` must run before any ``dm_control`` import. The choice is,
in order: the config's ``mujoco_gl``, the ``MUJOCO_GL`` environment variable, else the first of ``egl``
then ``osmesa`` that can create an offscreen context (probed in a subprocess, because a failed OpenGL
platform import cannot be undone inside this process).

Render presets: ``default`` renders as the model XML says; ``fast`` turns off shadows and reflections
(scene render flags) and multisampling (``model.vis.quality.offsamples = 0``, before the GL context is
made); ``fast_aa`` turns off shadows and reflections but keeps the model's multisampling, so thin bodies
(a cartpole's pole, one pixel wide at 64 px) stay antialiased. The fast presets change the pixels, so
scores and models are not comparable across presets.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, Optional, Tuple

from .spec import ALLOWED_BACKENDS, RENDER_PRESETS, EnvError

AUTO_BACKENDS = ("egl", "osmesa")
"""Backends tried, in order, when nothing is configured."""

_PROBE_CODE = (
    "import mujoco\n"
    "ctx = mujoco.GLContext(16, 16)\n"
    "ctx.make_current()\n"
    "ctx.free()\n"
)
_probe_cache: Dict[str, Tuple[bool, str]] = {}
_HOW_TO_FIX = (
    "install a working EGL driver (Debian: libegl1 libegl-mesa0 or the NVIDIA driver) for MUJOCO_GL=egl, "
    "or Debian's libosmesa6 for MUJOCO_GL=osmesa, then set MUJOCO_GL (or env.mujoco_gl) to it"
)


def probe_backend(name: str, timeout_s: float = 60.0) -> Tuple[bool, str]:
    """Checks in a subprocess whether MuJoCo can create an offscreen GL context with ``name``.

    Args:
        name: A backend from :data:`ALLOWED_BACKENDS`.
        timeout_s: Seconds to wait for the probe.

    Returns:
        ``(ok, detail)`` where ``detail`` is the last line of the probe's error output when it failed.
    """
    if name in _probe_cache:
        return _probe_cache[name]
    env = dict(os.environ, MUJOCO_GL=name, PYOPENGL_PLATFORM=name)
    if name == "glfw":
        env.pop("PYOPENGL_PLATFORM")
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE_CODE], env=env, capture_output=True,
                              text=True, timeout=timeout_s)
        ok = proc.returncode == 0
        lines = proc.stderr.strip().splitlines()
        detail = "" if ok else (lines[-1] if lines else f"exit status {proc.returncode}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        ok, detail = False, f"{type(exc).__name__}: {exc}"
    _probe_cache[name] = (ok, detail)
    return ok, detail


def _active_backend() -> Optional[str]:
    """The backend dm_control already imported, or None when its renderer is not imported yet."""
    render_mod = sys.modules.get("dm_control._render")
    if render_mod is None:
        return None
    backend = getattr(render_mod, "BACKEND", None)
    return str(backend) if backend is not None else "none"


def _set_backend(name: str) -> None:
    os.environ["MUJOCO_GL"] = name
    if name in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", name)


def select_backend(preferred: str = "", *, strict: bool = True) -> Optional[str]:
    """Chooses ``MUJOCO_GL`` before dm_control is imported and returns the chosen backend.

    Args:
        preferred: ``EnvConfig.mujoco_gl`` (empty: ``$MUJOCO_GL``, else egl then osmesa).
        strict: Raise when no backend works (pixel observations need one). When False, a missing
            backend is tolerated (proprio envs) and None is returned; ``render()`` will fail later.

    Returns:
        The backend name, or None when nothing works and ``strict`` is False.

    Raises:
        EnvError: Unknown backend name, a backend that differs from the one dm_control already
            imported, or (strict) no working backend.
    """
    requested = preferred or os.environ.get("MUJOCO_GL", "")
    requested = requested.strip().lower()
    if requested and requested not in ALLOWED_BACKENDS:
        source = "env.mujoco_gl" if preferred else "$MUJOCO_GL"
        raise EnvError(f"{source}={requested!r} is not a MuJoCo rendering backend; allowed: "
                       f"{', '.join(ALLOWED_BACKENDS)}")
    active = _active_backend()
    if active is not None:
        if preferred and requested != active:
            raise EnvError(f"env.mujoco_gl={requested!r} but dm_control was already imported with "
                           f"MUJOCO_GL={active!r}; MUJOCO_GL must be set before the first dm_control import")
        return active
    candidates = (requested,) if requested else AUTO_BACKENDS
    failures = []
    for name in candidates:
        ok, detail = probe_backend(name) if (strict or not requested) else (True, "")
        if ok:
            _set_backend(name)
            return name
        failures.append(f"{name}: {detail}")
    if not strict:
        if requested:
            _set_backend(requested)
        return None
    raise EnvError(f"no MuJoCo rendering backend works ({'; '.join(failures)}); {_HOW_TO_FIX}")


def render_flag_overrides(preset: str) -> Dict[str, bool]:
    """Scene render-flag overrides for a preset (``{}`` for ``default``).

    Raises:
        EnvError: ``preset`` is not in :data:`RENDER_PRESETS`.
    """
    check_preset(preset)
    return {} if preset == "default" else {"shadow": False, "reflection": False}


def check_preset(preset: str) -> None:
    """Raises EnvError naming ``preset`` when it is not one of :data:`RENDER_PRESETS`."""
    if preset not in RENDER_PRESETS:
        raise EnvError(f"env.render_preset={preset!r} is not allowed; use one of {', '.join(RENDER_PRESETS)}")


def apply_model_preset(model, preset: str) -> None:
    """Edits model visual options for a preset; call before the first render of that model.

    Args:
        model: A ``mujoco.MjModel`` (or dm_control's wrapper of one).
        preset: ``default`` or ``fast_aa`` (no change), or ``fast`` (multisampling off).
    """
    check_preset(preset)
    if preset == "fast":
        model.vis.quality.offsamples = 0
