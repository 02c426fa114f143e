"""The replay owner of distributed runs as a plain object (no Ray): each actor's env ids land at their own
offset, a step and its counts are written together, a dead incarnation's queued calls and steps past the
budget are refused without counting anything, the replay-ratio throttle, and a snapshot/restore round trip."""
import numpy as np

from ezrobot.distributed.owner import ReplayOwner
from ezrobot.distributed.workers import RecordingReplay
from ezrobot.envs.spec import EnvSpec
from ezrobot.replay.config import ReplayConfig
from ezrobot.types import EpisodeStats

SPEC = EnvSpec("test/vec", (3,), "float32", 1, "discrete", 2, 0.99, 1, 1000)
KWARGS = {"num_envs": 4, "unroll_steps": 2, "td_steps": 2, "policy_size": 2, "action_dim": 0}


def owner(budget=100, start=4, ratio=1.0, lead=2):
    return ReplayOwner(ReplayConfig(capacity=500), SPEC, KWARGS, envs_per_actor=2, budget=budget,
                       start_transitions=start, replay_ratio=ratio, lead=lead, seed=0)


def step_calls(value, done=False):
    """One agent step of an actor with 2 envs, recorded as SelfPlay records it."""
    rec = RecordingReplay()
    obs = np.full((2, 3), value, np.float32)
    rec.add(np.arange(2), np.zeros(2, np.int64), np.ones(2, np.float32), np.full((2, 2), 0.5, np.float32),
            np.zeros(2, np.float32), obs, np.array([done, False]), np.zeros(2, bool))
    if done:
        rec.start_episodes(np.array([0]), obs[:1])
    return rec.take()


def start_calls():
    rec = RecordingReplay()
    rec.start_episodes(np.arange(2), np.zeros((2, 3), np.float32))
    return rec.take()


def test_each_actor_writes_its_own_envs_and_counts_with_the_data():
    o = owner()
    for index in (0, 1):
        assert o.register_actor(index, "node") == 0
        assert o.apply(index, 0, start_calls(), 0, 0, [])["applied"]
    assert sorted(o.live_env_ids()) == [0, 1, 2, 3]
    status = o.apply(1, 0, step_calls(1.0, done=True), 2, 2, [EpisodeStats(5.0, 1, 1, {}, None)])
    assert status["applied"] and status["agent_steps"] == 2 and status["episodes"] == 1
    assert status["train_returns"] == [5.0]
    # 4 starts + 2 steps + 1 restart of env 2: every counted agent step wrote one position
    assert o.replay.num_insertions == status["agent_steps"] + o.replay.state_dict()["next_episode"]


def test_a_dead_incarnation_and_steps_past_the_budget_are_refused_uncounted():
    o = owner(budget=4)
    o.register_actor(0, "node")
    o.apply(0, 0, start_calls(), 0, 0, [])
    assert o.register_actor(0, "node") == 1  # restarted by Ray
    stale = o.apply(0, 0, step_calls(1.0), 2, 2, [])
    assert not stale["applied"] and stale["agent_steps"] == 0 and stale["ignored_calls"] == 1
    assert o.apply(0, 1, start_calls(), 0, 0, [])["applied"]  # closes the old episodes as truncated
    assert o.replay.state_dict()["truncated"].sum() == 2
    for value in (1.0, 2.0):
        assert o.apply(0, 1, step_calls(value), 2, 2, [])["applied"]
    past = o.apply(0, 1, step_calls(3.0), 2, 2, [])
    assert past["done"] and not past["applied"] and past["agent_steps"] == 4
    assert o.status()["actor_restarts"] == 1


def test_the_throttle_holds_the_replay_ratio():
    o = owner(start=2, ratio=0.5, lead=2)
    o.register_actor(0, "node")
    o.apply(0, 0, start_calls(), 0, 0, [])
    for value in range(4):
        o.apply(0, 0, step_calls(float(value)), 2, 2, [])
    assert o.updates_allowed() == 3  # floor((8 - 2) * 0.5)
    assert not o.may_collect()  # 3 updates due, the lead allows 2 * 0.5 = 1
    o.update_priorities(np.array([0]), np.array([1.0]), updates=2)
    assert o.may_collect()


def test_snapshot_and_restore_continue_the_counters_and_the_replay():
    a = owner()
    a.register_actor(0, "node")
    a.apply(0, 0, start_calls(), 0, 0, [])
    a.apply(0, 0, step_calls(1.0), 2, 2, [EpisodeStats(3.0, 1, 1, {}, None)])
    counters, replay = a.snapshot()
    b = owner()
    b.restore(counters, replay, updates=7)
    assert b.status()["agent_steps"] == 2 and b.updates == 7 and len(b.replay) == len(a.replay)
    assert b.live_env_ids() == []  # the live episodes were closed: their environments are gone
