"""model.obs_running_norm (running mean/std of vector observations) and model.latent_norm (minmax | none)."""
import numpy as np
import pytest
import torch

from ezrobot.envs.spec import EnvSpec
from ezrobot.factory import frozen_copy
from ezrobot.nets.config import ModelConfig, resolve_preset
from ezrobot.nets.mlp import RunningObsNorm
from ezrobot.nets.model import build_model

VECTOR = EnvSpec(name="vec", obs_shape=(3,), obs_dtype="float32", frame_stack=1, action_type="continuous",
                 num_actions=2, discount=0.99, action_repeat=2, max_episode_steps=500)
PIXELS = EnvSpec(name="pixels", obs_shape=(9, 64, 64), obs_dtype="uint8", frame_stack=3,
                 action_type="discrete", num_actions=4, discount=0.997, action_repeat=4, max_episode_steps=100)


def _batches():
    rng = np.random.default_rng(0)
    scale, shift = np.array([1.0, 40.0, 0.05]), np.array([3.0, -2.0, 0.5])
    return [rng.normal(size=(n, 3)) * scale + shift for n in (7, 128, 1, 60)]


def test_running_moments_equal_those_of_everything_seen():
    norm = RunningObsNorm(3).train()
    batches = _batches()
    for batch in batches:
        norm(torch.tensor(batch, dtype=torch.float32))
    seen = np.concatenate(batches)
    np.testing.assert_allclose(norm.mean.numpy(), seen.mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), seen.var(axis=0), rtol=1e-4)
    assert float(norm.count) == len(seen)
    out = norm.eval()(torch.tensor(seen, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, (seen - seen.mean(0)) / np.sqrt(seen.var(0) + norm.eps), rtol=1e-4, atol=1e-4)


def test_identity_before_any_update_and_frozen_in_eval_mode():
    norm = RunningObsNorm(3).eval()
    x = torch.tensor([[30.0, -0.5, 2.0]])
    torch.testing.assert_close(norm(x), x)
    assert float(norm.count) == 0.0
    norm.train()(x.repeat(4, 1) + torch.arange(4.0)[:, None])
    before = norm.mean.clone()
    norm.eval()(torch.full((5, 3), 100.0))
    torch.testing.assert_close(norm.mean, before)


def test_statistics_travel_with_the_weights_to_acting_copies():
    model = build_model(ModelConfig(preset="small", obs_running_norm=True), VECTOR)
    copy = frozen_copy(model)
    model.train()
    obs = torch.tensor(_batches()[1], dtype=torch.float32)
    model.initial_inference(obs)
    assert float(model.representation.obs_norm.count) == len(obs)
    assert float(copy.representation.obs_norm.count) == 0.0  # eval mode, not sent yet
    copy.load_state_dict(model.state_dict())
    model.eval()
    torch.testing.assert_close(copy.initial_inference(obs)[0], model.initial_inference(obs)[0])


def test_latent_norm_none_keeps_the_representation_output():
    torch.manual_seed(0)
    minmax = build_model(ModelConfig(preset="small"), VECTOR).eval()
    plain = build_model(ModelConfig(preset="small", latent_norm="none"), VECTOR).eval()
    plain.load_state_dict(minmax.state_dict())
    obs = torch.tensor([[30.0, -0.5, 2.0], [0.0, 1.0, -1.0]])
    with torch.no_grad():
        _check_latents(minmax, plain, obs)


def _check_latents(minmax, plain, obs):
    latent = plain.initial_inference(obs)[0]
    torch.testing.assert_close(latent, plain.representation(obs))
    squashed = minmax.initial_inference(obs)[0]
    assert float(squashed.min()) == 0.0 and float(squashed.max()) == pytest.approx(1.0)
    assert float(latent.max() - latent.min()) != pytest.approx(1.0)
    nxt = plain.recurrent_inference(latent, torch.zeros(2, 2), None)[0]
    torch.testing.assert_close(nxt, plain.dynamics(latent, plain.action_encoder(torch.zeros(2, 2))))


def test_image_observations_refuse_obs_running_norm():
    with pytest.raises(ValueError, match="obs_running_norm"):
        resolve_preset(ModelConfig(preset="small", obs_running_norm=True), PIXELS)


def test_latent_norm_choices_are_checked():
    with pytest.raises(ValueError, match="latent_norm"):
        resolve_preset(ModelConfig(preset="small", latent_norm="layer"), VECTOR)
