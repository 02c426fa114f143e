"""model.obs_symlog: vector observations squashed by symlog before the first layer."""
import math

import pytest
import torch

from ezrobot.nets.mlp import MLPRepresentation, symlog


def test_symlog_by_hand():
    x = torch.tensor([-47.3, -1.0, 0.0, 0.2, 10.0])
    want = [-math.log1p(47.3), -math.log(2.0), 0.0, math.log1p(0.2), math.log1p(10.0)]
    torch.testing.assert_close(symlog(x), torch.tensor(want))


def test_representation_squashes_only_when_asked():
    torch.manual_seed(0)
    plain = MLPRepresentation(3, 8, 4, 1, "layer")
    squashed = MLPRepresentation(3, 8, 4, 1, "layer", obs_symlog=True)
    squashed.load_state_dict(plain.state_dict())
    obs = torch.tensor([[30.0, -0.5, 2.0]])
    torch.testing.assert_close(squashed(obs), plain(symlog(obs)))
    assert not torch.allclose(squashed(obs), plain(obs))


def test_image_observations_refuse_obs_symlog():
    from ezrobot.envs.spec import EnvSpec
    from ezrobot.nets.config import ModelConfig, resolve_preset

    spec = EnvSpec(name="pixels", obs_shape=(9, 64, 64), obs_dtype="uint8", frame_stack=3,
                   action_type="discrete", num_actions=4, discount=0.997, action_repeat=4, max_episode_steps=100)
    with pytest.raises(ValueError, match="obs_symlog"):
        resolve_preset(ModelConfig(preset="small", obs_symlog=True), spec)
