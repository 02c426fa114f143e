"""End to end through the console entry point (``python -m ezrobot``): a tiny CartPole training run, then
``eval`` and ``video`` on it, a random-policy video of a robot task and a tiny continuous-control run.
Independent commands run concurrently (two cores) to keep the file short."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ezrobot.hydra_config import load_config

TINY = ["env_steps=300", "train.start_transitions=100", "train.batch_size=16", "search.num_simulations=4",
        "eval.episodes=2", "eval.interval=200", "log.progress=false", "replay.capacity=2000", "threads=1"]
# dmc/cartpole-swingup: 500 agent steps per episode by default; 50 keeps the evaluation short.
DMC = ["task=dmc/cartpole-swingup", "model.preset=small", "search.num_sampled_actions=4", "env_steps=200",
       "env.max_episode_steps=50", "train.start_transitions=40", "train.batch_size=8", "search.num_simulations=4",
       "eval.episodes=1", "eval.interval=1000", "log.progress=false", "replay.capacity=1000", "threads=1",
       "train.num_envs=2"]
REQUIRED_KEYS = ("env_steps", "train_steps", "wall_time_s", "eval_return_mean", "eval_return_std", "eval_episodes",
                 "loss/total", "loss/value", "loss/policy", "loss/value_prefix")


def _start(args, cwd):
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-m", "ezrobot", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run every command once; results are ``name -> (returncode, stdout, stderr)`` plus the paths."""
    root = tmp_path_factory.mktemp("smoke")
    run_dir, dmc_dir = root / "cartpole", root / "dmc"
    procs = {
        "train": _start(["train", "experiment=cartpole", f"run_dir={run_dir}", *TINY], root),
        "jaco_video": _start(["video", "task=jaco_reach", "policy=random", f"out={root / 'jaco.mp4'}",
                              "max_steps=10", "size=64x64"], root),
        "dmc": _start(["train", f"run_dir={dmc_dir}", *DMC], root),
    }
    results = {"train": _finish(procs.pop("train"))}
    procs["eval"] = _start(["eval", f"run_dir={run_dir}", "episodes=2"], root)
    procs["cartpole_video"] = _start(["video", f"run_dir={run_dir}", "episodes=1", f"out={run_dir / 'v.mp4'}",
                                      "max_steps=20"], root)
    for name, proc in procs.items():
        results[name] = _finish(proc)
    results.update(root=root, run_dir=run_dir, dmc_dir=dmc_dir)
    return results


def _ok(result):
    code, out, err = result
    assert code == 0, f"exit {code}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-4000:]}"
    return out, err


def _rows(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def test_train_writes_the_run_directory(smoke):
    out, _ = _ok(smoke["train"])
    run_dir = smoke["run_dir"]
    for name in ("config.yaml", "metrics.jsonl", "metrics.csv", "summary.json", os.path.join("checkpoints", "latest")):
        assert (run_dir / name).exists(), name
    summary = json.loads(out.strip().splitlines()[-1])
    with open(run_dir / "summary.json") as f:
        assert json.load(f) == summary
    assert summary["env_steps"] == 300 and summary["task"] == "gym/CartPole-v1"
    ratio = load_config(["experiment=cartpole"]).train.replay_ratio  # held exactly by the trainer
    assert summary["train_steps"] == int((300 - 100) * ratio)
    with open(run_dir / "checkpoints" / "latest") as f:
        assert f.read().strip() == "step_0000000300"


def test_metrics_rows_have_the_required_keys(smoke):
    _ok(smoke["train"])
    rows = _rows(smoke["run_dir"])
    assert [r["env_steps"] for r in rows] == [200, 300]  # eval.interval=200, plus the final evaluation
    for row in rows:
        missing = [k for k in REQUIRED_KEYS if k not in row]
        assert not missing, f"metrics row lacks {missing}: {sorted(row)}"
        assert row["eval_episodes"] == 2
        # CartPole pays 1 per step: the mean return is the mean episode length, in CartPole's range [8, 500].
        assert row["eval_return_mean"] == pytest.approx(row["eval_length_mean"])
        assert 8 <= row["eval_return_mean"] <= 500 and row["eval_return_std"] >= 0
    assert rows[0]["train_steps"] < rows[1]["train_steps"]
    assert rows[0]["wall_time_s"] <= rows[1]["wall_time_s"]
    with open(smoke["run_dir"] / "metrics.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [int(r["env_steps"]) for r in table] == [200, 300]
    assert set(REQUIRED_KEYS) <= set(table[0])


def test_eval_prints_json(smoke):
    _ok(smoke["train"])
    out, _ = _ok(smoke["eval"])
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["eval_episodes"] == 2 and stats["env_steps"] == 300
    assert stats["checkpoint"].endswith("step_0000000300")
    assert stats["eval_return_mean"] == pytest.approx(stats["eval_length_mean"]) and stats["eval_return_mean"] >= 8


def _frames(path):
    import imageio.v3 as iio

    return iio.imread(path)


def test_cartpole_video_of_the_trained_run(smoke):
    """The quick-start video: CartPole renders through pygame (a dependency): a decodable video of the
    reset frame plus at most 20 steps, in the requested file."""
    _ok(smoke["train"])
    out, _ = _ok(smoke["cartpole_video"])
    path = smoke["run_dir"] / "v.mp4"
    assert str(path) in out
    frames = _frames(path)
    assert 2 <= len(frames) <= 21 and frames.std() > 1.0


def test_random_policy_video_of_a_robot_task(smoke):
    out, _ = _ok(smoke["jaco_video"])
    path = smoke["root"] / "jaco.mp4"
    assert str(path) in out
    frames = _frames(path)
    assert frames.shape[:2] == (11, 64) and frames.shape[3] == 3  # the reset frame and 10 steps
    assert frames.shape[2] >= 64  # 64 px per camera, plus the overlay panel when overlays are on
    assert frames.std() > 1.0  # something was rendered


def test_continuous_control_smoke(smoke):
    out, _ = _ok(smoke["dmc"])
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["task"] == "dmc/cartpole-swingup"
    assert summary["env_steps"] >= 200 and summary["train_steps"] > 0
    row = _rows(smoke["dmc_dir"])[-1]
    assert row["eval_episodes"] == 1 and row["eval_length_mean"] == 50
    from ezrobot.envs import EnvConfig, make_env

    env, spec = make_env("dmc/cartpole-swingup", EnvConfig(), seed=0, train=False)
    env.close()
    repeat = spec.action_repeat
    assert summary["env_steps"] == summary["agent_steps"] * repeat
    # cartpole-swingup pays in (0, 1] per simulator step once the pole moves off straight down.
    assert 0 < row["eval_return_mean"] <= 50 * repeat
    for key in REQUIRED_KEYS:
        assert key in row and row[key] is not None and np.isfinite(row[key]), key
    assert 0 < row["train/policy_std"] < 10  # the continuous policy head reports its spread



def test_bench_probe_measures_the_search_of_a_trained_run(smoke):
    _ok(smoke["dmc"])
    code, out, err = _finish(_start(["bench", "probe", str(smoke["dmc_dir"]), "--states", "2", "--horizon", "3",
                                     "--stochastic-rollouts", "2", "--json"], smoke["root"]))
    assert code == 0, err[-3000:]
    result = json.loads(out)
    assert result["task"] == "dmc/cartpole-swingup" and result["states"] == 2 and len(result["per_state"]) == 2
    for row in result["per_state"]:
        assert row["mc_gain_best"] >= row["mc_gain_chosen"] - 1e-9  # the best candidate is at least the chosen
        assert row["mc_std"] >= 0 and row["search_q_std"] >= 0 and row["latent_error_ratio"] > 0
        assert row["model_q_std"] >= 0 and row["real_next_q_std"] >= 0 and row["mc_stoch_std"] >= 0
        assert -1.0 <= row["spearman_mc_stoch_mc"] <= 1.0 or np.isnan(row["spearman_mc_stoch_mc"])
        assert 0.0 <= row["projection_top1"] <= 1.0
        for key in ("spearman_search_mc", "spearman_model_mc", "spearman_real_next_mc"):
            assert np.isnan(row[key]) or -1.0 <= row[key] <= 1.0, key
        assert np.isnan(row["spearman_critic_mc"])  # the smoke run has no critic (model.critic_heads=0)
        assert 0.0 <= row["widened_chosen"] <= 1.0 and 0.0 < row["target_spread"] < 50.0
        for key in ("widened_mc_gap", "widened_search_gap"):
            assert np.isnan(row[key]) or np.isfinite(row[key]), key
    assert -1.0 <= result["projection_cos_states"] <= 1.0 + 1e-6
    assert 0 < result["episode_return"] <= 50 * 2 * 4  # 50 agent steps, repeat <= 8 in cartpole-swingup
    assert 0.0 <= result["policy_mean_abs"] <= 5.0 and result["policy_std"] >= 0.1
    assert 0.0 <= result["policy_saturation"] <= 1.0


def test_probe_policy_shape_by_hand():
    """Two observations, 1-D: mu = 5 tanh(x / 5) and sigma = softplus(x + 1) + 0.1 from the head; the expected
    fraction beyond |a| > 0.99 is P(|u| > atanh 0.99) under N(mu, sigma), by math.erf."""
    import math

    import torch

    from ezrobot.bench.probe import _policy_shape

    heads = torch.tensor([[0.0, -1.0], [10.0, 0.5]])

    class Model:
        def initial_inference(self, obs):
            return None, None, heads

    out = _policy_shape(Model(), np.zeros((2, 3)))
    mus = [5 * math.tanh(x / 5) for x in (0.0, 10.0)]
    sigmas = [math.log1p(math.exp(x + 1.0)) + 0.1 for x in (-1.0, 0.5)]
    b = math.atanh(0.99)
    phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    beyond = [phi((-b - m) / s) + 1 - phi((b - m) / s) for m, s in zip(mus, sigmas)]
    assert abs(out["policy_mean_abs"] - sum(abs(m) for m in mus) / 2) < 1e-6
    assert abs(out["policy_std"] - sum(sigmas) / 2) < 1e-6
    assert abs(out["policy_saturation"] - sum(beyond) / 2) < 1e-6
    assert 0.85 < beyond[1] and beyond[0] < 0.2  # mu = 4.82 (sigma 1.8) is mostly bang-bang, mu = 0 (0.8) is not


def test_probe_widened_gap_is_the_policy_samples_mean_minus_the_widened_mean():
    from ezrobot.bench.probe import _widened_gap

    values = np.array([1.0, 3.0, 0.5, 0.5, 2.0])  # the last 3 are the widened samples
    assert _widened_gap(values, 3) == 2.0 - 1.0
    assert np.isnan(_widened_gap(values, 0)) and np.isnan(_widened_gap(values, 5))


def test_probe_target_spread_is_one_for_draws_from_the_policy_and_the_widening_for_widened_draws():
    import types

    import torch

    from ezrobot.bench.probe import _root_targets
    from ezrobot.distributions import head_to_mean_std

    head = torch.tensor([[0.3, -0.2, -3.0, -2.5]])  # 2-D; sigma ~0.23-0.3, so sigma x3 stays clear of the clip
    mean, std = (t[0].double().numpy() for t in head_to_mean_std(head))

    class Model:
        def initial_inference(self, obs):
            return None, None, head.expand(len(obs), -1)

    def agent(scale, widened_index):
        def search(model, obs, rng, train):
            eps = rng.standard_normal((len(obs), 2))
            return types.SimpleNamespace(action=np.tanh(mean + scale * std * eps),
                                         action_index=np.full(len(obs), widened_index), q_values=np.zeros((len(obs), 4)))
        return types.SimpleNamespace(search=search, cfg=types.SimpleNamespace(widened_count=lambda: 3))

    rng = np.random.default_rng(0)
    from_policy = _root_targets(agent(1.0, 0), Model(), np.zeros(3), 4000, rng)
    widened = _root_targets(agent(3.0, 2), Model(), np.zeros(3), 4000, rng)
    assert abs(from_policy["target_spread"] - 1.0) < 0.05 and from_policy["widened_chosen"] == 0.0
    assert abs(widened["target_spread"] - 3.0) < 0.15 and widened["widened_chosen"] == 1.0


def test_restore_physics_state_replays_the_same_step():
    from ezrobot.envs import EnvConfig, make_env

    env, _ = make_env("dmc/cartpole-swingup", EnvConfig(), seed=0, train=False)
    env.reset(seed=1)
    for _ in range(3):
        env.step(np.array([0.5]))
    state = env.physics_state()
    first = env.step(np.array([-0.3]))
    for _ in range(4):
        env.step(np.array([0.9]))
    env.restore_physics_state(state)
    again = env.step(np.array([-0.3]))
    env.close()
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
