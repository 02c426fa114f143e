"""Prioritized replay: :mod:`ezrobot.replay.config` (``ReplayConfig``, imported by the config schema without
the buffer), :mod:`ezrobot.replay.buffer` (``Replay``), :mod:`ezrobot.replay.trajectory` (``Trajectory``, what
``Replay.gather`` returns) and :mod:`ezrobot.replay.checks` (argument checks)."""
