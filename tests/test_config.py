"""Config schema, Hydra composition, validation and the YAML round trip (ezrobot.config, hydra_config)."""
import dataclasses
import re

import pytest
import yaml

from ezrobot.config import Config, ConfigError, default_run_dir, derive, validate
from ezrobot.hydra_config import experiments, from_yaml, load_config, schema_help, to_yaml


def test_default_composition_is_the_cartpole_preset():
    cfg = load_config([])
    assert isinstance(cfg, Config)
    assert cfg.experiment == "cartpole"
    assert cfg.task == "gym/CartPole-v1"
    assert cfg.run_dir == default_run_dir(cfg) == "runs/cartpole-gym_CartPole-v1-s0"


@pytest.mark.parametrize("name", experiments())
def test_every_preset_composes_and_validates(name):
    cfg = load_config([f"experiment={name}"])
    assert cfg.experiment == name, f"configs/experiment/{name}.yaml must set experiment: {name}"
    validate(cfg)
    derived = derive(cfg, action_repeat=4 if cfg.task.startswith("atari/") else 1)
    assert derived.total_updates >= 1
    assert derived.agent_steps >= cfg.train.start_transitions, \
        f"{name}: the budget ends before learning starts"


def test_expected_presets_exist():
    assert {"cartpole", "atari100k", "atari_cpu", "dmc_proprio", "dmc_pixels"} <= set(experiments())


def test_atari100k_preset_matches_the_paper():
    cfg = load_config(["experiment=atari100k"])
    assert (cfg.env_steps, cfg.train.batch_size, cfg.train.unroll_steps, cfg.train.td_steps) == (400_000, 256, 5, 5)
    assert cfg.search.num_simulations == 50 and cfg.train.reanalyze_ratio == pytest.approx(0.99)
    assert (cfg.optim.optimizer, cfg.optim.lr, cfg.optim.momentum) == ("sgd", 0.2, 0.9)
    assert cfg.optim.weight_decay == pytest.approx(1e-4) and cfg.optim.warmup_steps == 1000
    assert (cfg.train.value_prefix_loss_coeff, cfg.train.value_loss_coeff, cfg.train.policy_loss_coeff,
            cfg.train.consistency_loss_coeff) == (1.0, 0.25, 1.0, 2.0)
    derived = derive(cfg, action_repeat=4)
    assert derived.agent_steps == 100_000
    assert derived.total_updates == 100_000 - 2000 + 20_000
    assert derived.td_horizon_T == 100_000


@pytest.mark.parametrize("overrides", [
    [],
    ["experiment=dmc_proprio", "seed=3", "train.batch_size=17"],
    ["task=jaco_reach", "optim.lr_decay_steps=[10,20]", "+env.gym_kwargs.render_mode=rgb_array"],
])
def test_yaml_round_trip(overrides):
    cfg = load_config(overrides)
    text = to_yaml(cfg)
    back = from_yaml(text)
    assert back == cfg
    assert to_yaml(back) == text
    assert yaml.safe_load(text)["seed"] == cfg.seed


def test_from_yaml_rejects_an_unknown_key():
    with pytest.raises(ConfigError, match="nonexistent"):
        from_yaml(to_yaml(load_config([])) + "nonexistent: 1\n")


def test_from_yaml_names_the_field_of_a_badly_typed_value():
    text = to_yaml(load_config([])).replace("seed: 0", "seed: abc")
    with pytest.raises(ConfigError, match="seed"):
        from_yaml(text)


def test_overrides_are_applied_and_typed():
    cfg = load_config(["seed=7", "train.batch_size=16", "optim.lr=0.5", "log.progress=false",
                       "task=dmc/cartpole-swingup", "run_dir=/tmp/x"])
    assert (cfg.seed, cfg.train.batch_size, cfg.optim.lr, cfg.log.progress) == (7, 16, 0.5, False)
    assert cfg.task == "dmc/cartpole-swingup" and cfg.run_dir == "/tmp/x"
    assert isinstance(cfg.train.batch_size, int) and isinstance(cfg.optim.lr, float)


def test_last_task_override_wins():
    assert load_config(["task=gym/Acrobot-v1", "task=jaco_reach"]).task == "jaco_reach"


@pytest.mark.parametrize("override, words", [
    ("foo=1", ["foo"]),
    ("train.nope=3", ["nope"]),
    ("search.num_simulations=0", ["num_simulations", "0"]),
    ("experiment=nope", ["nope", "cartpole"]),
    ("experiment=cartpol", ["cartpol", "did you mean cartpole"]),
    ("seed=abc", ["seed", "abc"]),
    ("seed=-1", ["seed", "-1"]),
    ("optim.optimizer=rmsprop", ["optim.optimizer", "rmsprop", "sgd"]),
    ("train.value_target=bogus", ["train.value_target", "bogus"]),
    ("train.consistency_target=ema", ["train.consistency_target", "ema", "online, target"]),
    ("train.consistency_space=cosine", ["train.consistency_space", "cosine", "projection, latent"]),
    ("train.consistency_start=-5", ["train.consistency_start", "-5"]),
    ("train.actor_coeff=1", ["train.actor_coeff=1", "model.critic_heads"]),
    ("model.critic_heads=-1", ["model.critic_heads=-1", ">= 0"]),
    ("train.entropy_target=[0.5] train.entropy_coeff=0.05", ["train.entropy_target=[0.5]", "[start, end]"]),
    ("train.entropy_target=[0.5,-1.0] train.entropy_coeff=0", ["train.entropy_coeff=0", "entropy_target"]),
    ("train.reanalyze_ratio=1.5", ["reanalyze_ratio", "1.5"]),
    ("train.reanalyze_simulations=-1", ["train.reanalyze_simulations", "-1"]),
    ("train.policy_from_reanalysis_only=true train.reanalyze_ratio=0",
     ["train.policy_from_reanalysis_only", "reanalyze_ratio > 0"]),
    ("train.policy_loss=importance", ["train.policy_loss='importance'", "reanalyze_search=one_step"]),
    ("train.policy_loss=split", ["train.policy_loss='split'", "reanalyze_search=one_step"]),
    ("experiment=dmc_proprio train.policy_loss=importance train.policy_from_reanalysis_only=false",
     ["train.policy_loss='importance'", "policy_from_reanalysis_only=true"]),
    ("train.batch_size=0", ["train.batch_size", "0"]),
    ("env_steps=0", ["env_steps"]),
    ("device=gpu", ["device", "gpu"]),
    ("replay.capacity=1", ["capacity"]),
    ("model.preset=huge", ["preset", "huge"]),
    ("train.visit_temperatures=[1.0]", ["visit_temperatures"]),
    ("noequals", ["noequals", "key=value"]),
])
def test_bad_overrides_raise_one_line_config_errors(override, words):
    with pytest.raises(ConfigError) as info:
        load_config(override.split(" "))
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_validate_catches_a_bad_dataclass_built_in_code():
    cfg = Config()
    cfg.train = dataclasses.replace(cfg.train, td_steps=0)
    with pytest.raises(ConfigError, match="train.td_steps"):
        validate(cfg)


def test_derive_counts_updates_from_the_agent_step_budget():
    cfg = load_config(["env_steps=1000", "train.start_transitions=200", "train.replay_ratio=0.5",
                       "train.extra_updates=7"])
    derived = derive(cfg, action_repeat=2)
    assert derived.agent_steps == 500
    assert derived.total_updates == (500 - 200) // 2 + 7
    assert derived.temperature_steps == (int(0.5 * derived.total_updates), int(0.75 * derived.total_updates))


def test_schema_help_lists_every_leaf_field():
    text = schema_help()
    for key in ("seed=0", "train.batch_size=", "search.num_simulations=", "optim.optimizer='sgd'",
                "replay.capacity=", "model.preset="):
        assert key in text


def test_distributed_group_selects_ray_and_checks_its_fields():
    cfg = load_config(["distributed=ray", "distributed.num_actors=3", "distributed.num_reanalyzers=0"])
    assert (cfg.distributed.backend, cfg.distributed.num_actors, cfg.distributed.num_reanalyzers) == ("ray", 3, 0)
    assert cfg.distributed.lead(cfg.train.num_envs) == 2 * cfg.train.num_envs * 3
    assert load_config([]).distributed.backend == "none"
    for bad, says in (("distributed=spark", "distributed='spark' is not allowed"),
                      ("distributed.num_actors=0", "num_actors=0 must be >= 1"),
                      ("distributed.max_lead=-1", "max_lead=-1 must be >= 0"),
                      ("distributed.address=auto", "address='auto' is read only with distributed=ray")):
        with pytest.raises(ConfigError, match=re.escape(says)):
            load_config([bad])
