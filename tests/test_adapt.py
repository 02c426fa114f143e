"""Adaptation (issue 19): task variants as parameters, reward relabelling from stored physics states, a run
initialised from another run's checkpoint (parts reused, frozen, own learning rates, the source's replay
copied) and the ``ezrobot finetune`` command with its compatibility error."""
import json
import os

import numpy as np
import pytest
import torch
import yaml

from ezrobot import cli
from ezrobot.adapt.parts import part_of
from ezrobot.adapt.relabel import relabelled_rewards
from ezrobot.adapt.source import fitting_parts
from ezrobot.checkpoint import load_checkpoint, newest_intact
from ezrobot.envs import EnvConfig, make_env
from ezrobot.factory import build_training
from ezrobot.hydra_config import load_config
from ezrobot.logger import MetricsLogger
from ezrobot.replay.buffer import Replay
from ezrobot.replay.config import ReplayConfig
from ezrobot.runs import check_same_run
from ezrobot.trainer import Trainer

TINY = ["env_steps=400", "train.start_transitions=30", "train.batch_size=16", "search.num_simulations=4",
        "search.num_sampled_actions=4", "eval.episodes=1", "eval.interval=400", "log.progress=false", "threads=1",
        "device=cpu"]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny trained jaco_reach run (the source of every fine-tune below)."""
    run_dir = tmp_path_factory.mktemp("adapt") / "src"
    assert cli.main(["train", "experiment=robot_proprio", f"run_dir={run_dir}", *TINY]) == 0
    return str(run_dir)


def _rollout(task_kwargs, actions, seed=3):
    """Per-step rewards and ``info["physics_states"]`` of jaco_reach (with ``task_kwargs``) under ``actions``."""
    env, spec = make_env("jaco_reach", EnvConfig(gym_kwargs=task_kwargs), seed=seed, train=True)
    env.reset(seed=seed)
    rewards, states = [], []
    for action in actions:
        _, reward, term, trunc, info = env.step(action)
        rewards.append(reward)
        states.append(info["physics_states"])
        if term or trunc:
            break
    env.close()
    return np.array(rewards), np.array(states), spec


# ------------------------------------------------------------------------------------------- task variants
def test_variants_are_parameters_with_the_same_specs():
    base, _ = make_env("jaco_reach", EnvConfig(), seed=0, train=False)
    heavy, heavy_spec = make_env("jaco_reach", EnvConfig(gym_kwargs={"mass_scale": 2.0, "obstacle": True,
                                                                      "gain_scale": 0.5}), seed=0, train=False)
    m0, m1 = base.unwrapped.physics.model, heavy.unwrapped.physics.model
    arm = [b for b in range(m0.nbody) if m0.body(b).name.startswith("jaco/")]
    np.testing.assert_allclose(m1.body_mass[arm], 2.0 * m0.body_mass[arm])
    np.testing.assert_allclose(m1.actuator_gainprm[:, 0], 0.5 * m0.actuator_gainprm[:, 0])
    assert m1.ngeom == m0.ngeom + 1 and heavy_spec.obs_shape == base.spec.obs_shape
    heavy.reset(seed=0)
    task, physics = heavy.unwrapped.task, heavy.unwrapped.physics
    geom = physics.model.geom("obstacle").id
    obstacle = physics.data.geom_xpos[geom].copy()
    target = physics.model.site_pos[physics.model.site("target").id]
    hand = physics.data.site_xpos[physics.model.site("jaco/hand/gripsite").id].copy()
    assert min(np.linalg.norm(obstacle - target), np.linalg.norm(obstacle - hand)) > 0.1  # between, on neither
    assert np.linalg.norm(obstacle - (hand + target) / 2) < 0.05
    assert task.episode_parameters(physics).shape == (1,)

    def touching() -> int:
        return sum(geom in (c.geom1, c.geom2) for c in physics.data.contact[:physics.data.ncon])
    assert touching() == 0  # the start pose clears it
    # it collides with the arm wherever it is put (a world geom moved through model.geom_pos never did:
    # MuJoCo keeps static bodies' bounding boxes from compile time)
    physics.data.mocap_pos[0] = physics.data.geom_xpos[physics.model.geom("jaco/hand/link_6_main").id]
    physics.forward()
    assert touching() > 0
    base.close()
    heavy.close()


def test_adapt_fields_without_init_from_are_refused(capsys):
    assert cli.main(["train", "adapt.reuse_replay=true", "env_steps=10"]) == 2
    err = capsys.readouterr().err.strip()
    assert "adapt.reuse_replay=True" in err and "init_from=RUN_DIR" in err and "\n" not in err


def test_bad_variant_parameter_is_one_line(capsys):
    code = cli.main(["train", "experiment=robot_proprio", "+env.gym_kwargs.mass_scale=-1", "env_steps=10"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "mass_scale=-1" in err and "> 0" in err and "\n" not in err


# --------------------------------------------------------------------------------------------- relabelling
def test_relabelled_rewards_equal_the_new_task_on_the_same_states():
    """Same seed and actions: the moved-target variant sees the same states (the target site does not
    collide); relabelling the source's stored states gives exactly the variant's own rewards."""
    actions = np.random.default_rng(0).uniform(-1, 1, size=(30, 3))
    src_rewards, states, spec = _rollout({}, actions)
    new_rewards, new_states, _ = _rollout({"target_offset": [0.0, 0.05, -0.05]}, actions)
    np.testing.assert_array_equal(states, new_states)
    env, _ = make_env("jaco_reach", EnvConfig(gym_kwargs={"target_offset": [0.0, 0.05, -0.05]}), seed=9, train=True)
    per_step = env.rewards_of_states(states.reshape(-1, states.shape[-1])).reshape(states.shape[:2])
    env.close()
    np.testing.assert_allclose(np.nansum(per_step, axis=1), new_rewards, rtol=1e-12, atol=1e-12)
    assert np.abs(new_rewards - src_rewards).max() > 1e-3  # the variant's rewards really differ

    # the same through the replay: stored with each transition, relabelled from its state_dict
    replay = Replay(ReplayConfig(capacity=100), spec, num_envs=1, unroll_steps=2, td_steps=2, policy_size=1)
    replay.start_episodes([0], np.zeros((1, *spec.obs_shape)))
    for reward, state in zip(src_rewards, states):
        replay.add([0], np.zeros((1, 3)), [reward], np.ones((1, 1)), [0.0], np.zeros((1, *spec.obs_shape)),
                   [False], [False], sampled_actions=np.zeros((1, 1, 3)), physics_states=state[None])
    cfg = load_config(["experiment=robot_proprio", "init_from=elsewhere", "+env.gym_kwargs.target_offset=[0,0.05,-0.05]"])
    relabelled = relabelled_rewards(replay.state_dict(), cfg)
    np.testing.assert_allclose(relabelled[:len(new_rewards)], new_rewards, atol=1e-5)


def test_jaco_push_relabels_its_own_states_exactly():
    env, spec = make_env("jaco_push", EnvConfig(), seed=4, train=True)
    env.reset(seed=4)
    rewards, states = [], []
    for action in np.random.default_rng(1).uniform(-1, 1, (15, 3)):
        _, reward, *_, info = env.step(action)
        rewards.append(reward)
        states.append(info["physics_states"])
    states = np.array(states)
    again = env.rewards_of_states(states.reshape(-1, states.shape[-1])).reshape(states.shape[:2]).sum(1)
    env.close()
    assert spec.physics_state_shape == (2, 23)
    np.testing.assert_allclose(again, rewards, rtol=1e-12, atol=1e-12)


def test_cartpole_balance_states_relabel_to_swingup_rewards():
    """dm_control's cartpole tasks share the model and the smooth reward: relabelling balance transitions
    with swingup gives their stored rewards back."""
    env, spec = make_env("dmc/cartpole-balance", EnvConfig(), seed=0, train=True)
    assert spec.physics_state_shape == (2, 5)  # qpos 2, qvel 2, ctrl 1 per control step
    env.reset(seed=0)
    rewards, states = [], []
    for a in np.linspace(-1, 1, 10):
        _, r, *_, info = env.step(np.array([a]))
        rewards.append(r)
        states.append(info["physics_states"])
    env.close()
    swingup, _ = make_env("dmc/cartpole-swingup", EnvConfig(), seed=1, train=True)
    flat = np.array(states).reshape(-1, 5)
    again = swingup.rewards_of_states(flat).reshape(10, 2).sum(1)
    swingup.close()
    np.testing.assert_allclose(again, rewards, rtol=1e-9)


# -------------------------------------------------------------------------------- initialising from a run
def _trainer(source, tmp_path, *extra):
    cfg = load_config(["experiment=robot_proprio", f"init_from={source}", f"run_dir={tmp_path / 'ft'}", *TINY,
                       *extra])
    parts, training = build_training(cfg)
    return Trainer(parts, training, MetricsLogger(str(tmp_path / "ft")))


def test_reused_parts_equal_the_source_and_the_others_are_fresh(source, tmp_path):
    trainer = _trainer(source, tmp_path, "adapt.reuse=[representation,dynamics]")
    fresh = {k: v.clone() for k, v in trainer.p.model.state_dict().items()}
    trainer.init_from_source()
    weights, _ = load_checkpoint(newest_intact(source), with_replay=False)
    for name, value in trainer.p.model.state_dict().items():
        if part_of(name) in ("representation", "dynamics"):
            assert torch.equal(value, weights["model"][name]), name
        else:
            assert torch.equal(value, fresh[name]) and not torch.equal(value, weights["model"][name]), name
    for copy in (trainer.p.target_model, trainer.p.selfplay_model):
        assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), trainer.p.model.state_dict().values()))


def test_frozen_parts_stay_then_train_and_replay_is_copied(source, tmp_path):
    trainer = _trainer(source, tmp_path, "adapt.freeze=[representation,value]", "adapt.freeze_updates=3",
                       "adapt.reuse_replay=true", "adapt.lr_policy=0.5")
    trainer.init_from_source()
    src_state, src_replay = load_checkpoint(newest_intact(source))
    acted = int(np.sum(src_replay["has_action"]))
    assert trainer.t.replay.num_sampleable > 0 and len(trainer.t.replay) >= acted
    scales = {g["part"]: g["lr_scale"] for g in trainer.t.learner.optimizer.param_groups}
    assert scales["policy"] == 0.5 and scales["dynamics"] == 1.0

    def snapshot():
        return {k: v.clone() for k, v in trainer.p.model.state_dict().items()}

    before = snapshot()
    for _ in range(3):
        trainer.update()
    after = snapshot()
    for name in before:
        same = torch.equal(before[name], after[name])
        if part_of(name) in ("representation", "value"):
            assert same, f"{name} changed while frozen"
    assert any(not torch.equal(before[n], after[n]) for n in before if part_of(n) == "policy")
    trainer.update()
    assert any(not torch.equal(after[n], trainer.p.model.state_dict()[n]) for n in before
               if part_of(n) == "representation")


def test_fitting_parts_follow_the_specs():
    _, jaco = make_env("jaco_reach", EnvConfig(), seed=0, train=False)
    _, cart = make_env("dmc/cartpole-swingup", EnvConfig(), seed=0, train=False)
    _, heavy = make_env("jaco_reach", EnvConfig(gym_kwargs={"mass_scale": 2.0}), seed=0, train=False)
    assert fitting_parts(jaco, cart) == ["reward", "value"]
    assert fitting_parts(jaco, heavy) == ["representation", "dynamics", "reward", "value", "policy"]


# ---------------------------------------------------------------------------------------- the command
def test_finetune_command_runs_resumes_and_refuses_a_misfit(source, tmp_path, capsys):
    run_dir = tmp_path / "heavy"
    args = ["finetune", f"from={source}", "+env.gym_kwargs.mass_scale=2.0", f"run_dir={run_dir}",
            "adapt.reuse_replay=true", *TINY]
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert "init_from" in err and "replay transitions (relabelled)" in err
    with open(run_dir / "config.yaml") as f:
        saved = yaml.safe_load(f)
    assert saved["init_from"] == source and saved["adapt"]["reuse_replay"] is True
    assert saved["env"]["gym_kwargs"] == {"mass_scale": 2.0}
    with open(run_dir / "summary.json") as f:
        assert json.load(f)["env_steps"] == 400
    assert cli.main(args[:-len(TINY)] + TINY + ["env_steps=600"]) == 0  # resumes: no re-initialisation
    err = capsys.readouterr().err
    assert "init_from" not in err
    with open(run_dir / "metrics.jsonl") as f:
        assert [json.loads(line)["env_steps"] for line in f] == [0, 400, 600]  # 0: the loaded agent

    misfit = tmp_path / "cart"
    code = cli.main(["finetune", f"from={source}", "task=dmc/cartpole-swingup", f"run_dir={misfit}", *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert "(25,)" in err and "(5,)" in err and "adapt.reuse=[reward,value]" in err
    assert not misfit.exists()  # refused before the run directory is written

    other = tmp_path / "wide"
    code = cli.main(["finetune", f"from={source}", "model.latent_dim=32", f"run_dir={other}", *TINY])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "other model.* settings" in err and not other.exists(), err


def test_saved_configs_without_the_new_fields_still_resume(tmp_path):
    cfg = load_config(["experiment=cartpole", f"run_dir={tmp_path}"])
    from ezrobot.hydra_config import to_yaml

    saved = yaml.safe_load(to_yaml(cfg))
    del saved["adapt"], saved["init_from"], saved["replay"]["store_physics_states"]
    with open(tmp_path / "config.yaml", "w") as f:
        yaml.safe_dump(saved, f)
    check_same_run(cfg, str(tmp_path))  # no error: missing fields hold their defaults
    with pytest.raises(Exception, match="init_from"):
        check_same_run(load_config(["experiment=cartpole", f"run_dir={tmp_path}", "init_from=x"]), str(tmp_path))


# ------------------------------------------------------------------------------------------ bench adapt
def test_bench_adapt_pairs_and_rows():
    from ezrobot.bench.adapt import compare, parse_pairs, side_name
    from ezrobot.usage import UsageError

    pairs = parse_pairs("acceptance")
    assert [(side_name(s), side_name(t)) for s, t in pairs] == [
        ("jaco_reach", "jaco_reach-obstacle_true"), ("dmc_cartpole-balance", "dmc_cartpole-swingup"),
        ("jaco_reach", "jaco_reach-mass_scale_2.0")]
    assert parse_pairs("a:b[x=1;y=2]") == [(("a", {}), ("b", {"x": "1", "y": "2"}))]
    with pytest.raises(UsageError, match="SOURCE:TARGET"):
        parse_pairs("jaco_reach")
    row = compare("p", 0, [(100, 10.0), (200, 50.0), (300, 100.0)], [(100, 85.0), (300, 90.0)])
    assert row["scratch_steps_to_80"] == 300 and row["finetune_steps_to_80"] == 100
    assert row["steps_ratio"] == pytest.approx(1 / 3, abs=1e-3) and row["finetune_final"] == 90.0


def test_bench_adapt_runs_reuses_and_writes_its_tables(tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["bench", "adapt", "--pairs", "jaco_reach:jaco_reach[mass_scale=2.0]", "--seeds", "0",
            "--env-steps", "200", "--adapt", "adapt.reuse_replay=true", "--out", str(out), "--json",
            "env.max_episode_steps=25", *[a for a in TINY if not a.startswith(("env_steps", "eval.interval"))],
            "eval.interval=100"]
    assert cli.main(args) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert len(rows) == 1 and rows[0]["pair"] == "jaco_reach -> jaco_reach-mass_scale_2.0"
    assert rows[0]["scratch_final"] is not None and rows[0]["finetune_final"] is not None
    for name in ("results.md", "results.json", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    finetune = out / "jaco_reach-mass_scale_2.0-from-jaco_reach-reuse_replay_true-s0"
    with open(finetune / "config.yaml") as f:
        assert yaml.safe_load(f)["init_from"] == str(out / "jaco_reach-s0")
    stamp = os.path.getmtime(finetune / "summary.json")
    assert cli.main(args) == 0  # every run finished: reused, not retrained
    assert os.path.getmtime(finetune / "summary.json") == stamp
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"] == rows


def test_replay_keeps_physics_states_and_sizes_them():
    from ezrobot.replay.sizing import estimate_nbytes

    _, spec = make_env("jaco_reach", EnvConfig(), seed=0, train=False)
    kept = Replay(ReplayConfig(capacity=64), spec, num_envs=1, unroll_steps=2, td_steps=2, policy_size=4)
    off = Replay(ReplayConfig(capacity=64, store_physics_states=False), spec, num_envs=1, unroll_steps=2,
                 td_steps=2, policy_size=4)
    assert kept.state_shape == (4, 10) and off.state_shape == () and off.physics_states([0]).shape == (1, 0)
    assert abs(estimate_nbytes(64, spec, 4, 3, 40) - kept.nbytes) < 1024
    assert abs(estimate_nbytes(64, spec, 4, 3, 0) - off.nbytes) < 1024
    state = off.state_dict()
    kept.load_state_dict(state)  # a replay saved without states loads, with NaN states
    assert np.isnan(kept.physics_states([0, 5])).all()
