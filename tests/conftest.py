"""Test-wide setup: headless MuJoCo rendering and small thread counts on the 2-core CI machine."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

import torch  # noqa: E402

torch.set_num_threads(1)  # 2 threads on a busy 2-core CI machine were measured 50x slower
