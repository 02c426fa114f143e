"""Reusing a source run's replay in a fine-tune run: rewards relabelled with the new task from the physics
states the source stored (``Replay.physics_states``), and the source's episodes copied into the new ring."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from ezrobot.config import Config, ConfigError
from ezrobot.envs import make_env


def relabelled_rewards(state: Dict[str, np.ndarray], cfg: Config) -> np.ndarray:
    """``float32 [N]``: the reward ``cfg.task`` gives each acted position of a saved replay ``state`` (a
    ``Replay.state_dict()``), summed over the step's control steps as the environment sums them; positions
    without an action get 0.

    Raises:
        ConfigError: one line when the source kept no physics states, or they do not fit ``cfg.task``.
    """
    acted = np.asarray(state["has_action"], bool) & (np.asarray(state["insertion"]) >= 0)
    states = state.get("physics_states")
    source = cfg.init_from
    if states is None or not np.isfinite(states[acted]).all(axis=-1).any(axis=-1).all():
        kept = 0 if states is None else int(np.isfinite(states[acted]).all(axis=-1).any(axis=-1).sum())
        raise ConfigError(f"init_from={source!r}: its replay holds physics states for {kept} of {int(acted.sum())} "
                          "transitions (its task does not support relabelling, or replay.store_physics_states was "
                          "off); set adapt.relabel=false to reuse its rewards unchanged")
    env, spec = make_env(cfg.task, cfg.env, seed=cfg.seed, train=True)
    try:
        if not hasattr(env, "rewards_of_states") or not spec.physics_state_shape:
            raise ConfigError(f"task={cfg.task!r} does not support reward relabelling; set adapt.relabel=false "
                              "to reuse the source's rewards unchanged")
        rows = np.asarray(states[acted], np.float64)
        per_step = env.rewards_of_states(rows.reshape(-1, rows.shape[-1])).reshape(rows.shape[:2])
    except ValueError as err:  # EnvError: states of another model
        raise ConfigError(f"init_from={source!r}: {err}") from None
    finally:
        env.close()
    rewards = np.zeros(len(acted), np.float32)
    rewards[acted] = np.nansum(per_step, axis=1)
    return rewards


def _stacked(frame: np.ndarray, spec) -> np.ndarray:
    """A stored frame as an observation the replay accepts (pixels: the frame repeated ``frame_stack`` times)."""
    return np.concatenate([frame] * spec.frame_stack, axis=0) if spec.is_pixels else frame


def copy_episodes(replay, state: Dict[str, np.ndarray], rewards: Optional[np.ndarray] = None) -> int:
    """Write every episode fragment stored in ``state`` (a ``Replay.state_dict()`` of a run with the same
    observation and action specs) into ``replay`` through environment id 0, oldest first; ``rewards``
    replace the stored rewards. Call before self-play continues (its live episodes must be restarted).

    Returns:
        The number of transitions (acted positions) copied.
    """
    insertion, prev, nxt = (np.asarray(state[k]) for k in ("insertion", "prev", "next"))
    reward = np.asarray(state["reward"] if rewards is None else rewards, np.float32)
    states, spec = state.get("physics_states"), replay.spec
    sampled = state.get("sampled_actions")
    heads = np.flatnonzero((insertion >= 0) & (prev < 0))
    copied = 0
    for head in heads[np.argsort(insertion[heads])]:
        replay.start_episodes([0], _stacked(state["obs"][head], spec)[None])
        pos = head
        while state["has_action"][pos] and nxt[pos] >= 0:
            q = nxt[pos]
            replay.add([0], state["action"][pos][None], reward[pos:pos + 1], state["policy"][pos][None],
                       state["root_value"][pos:pos + 1], _stacked(state["obs"][q], spec)[None],
                       state["terminated"][q:q + 1], state["truncated"][q:q + 1],
                       sampled_actions=None if sampled is None else sampled[pos][None],
                       physics_states=None if states is None or not replay.state_shape else states[pos][None])
            copied += 1
            pos = q
        if not state["is_final"][pos]:
            replay.end_episodes([0])
    return copied
