"""EfficientZero networks: presets, shapes, normalisation, zero-init heads, param count, autocast, augment."""
import dataclasses

import pytest
import torch
from omegaconf import OmegaConf

from ezrobot.envs.spec import EnvSpec
from ezrobot.nets import ModelConfig, build_model, parameter_breakdown, resolve_preset
from ezrobot.nets.augment import (augment_observations, random_shift, shift_by_gather, shift_by_slices,
                                  shift_offsets)
from ezrobot.nets.conv import conv_latent_shape

ATARI = EnvSpec("atari/Pong", (12, 96, 96), "uint8", 4, "discrete", 18, 0.997, 4, 27000)
PIXELS_CONT = EnvSpec("dmc/cartpole-swingup", (9, 64, 64), "uint8", 3, "continuous", 1, 0.99, 8, 125)
PROPRIO = EnvSpec("dmc/walker-walk", (24,), "float32", 1, "continuous", 6, 0.997, 2, 500)
VECTOR_DISC = EnvSpec("gym/CartPole-v1", (4,), "float32", 1, "discrete", 2, 0.997, 1, 500)
SMALL = ModelConfig(preset="small")


def _obs(spec, batch, gen):
    if spec.is_pixels:
        return torch.randint(0, 256, (batch, *spec.obs_shape), dtype=torch.uint8, generator=gen)
    return torch.randn(batch, *spec.obs_shape, generator=gen)


def _action(spec, batch, gen):
    if spec.action_type == "discrete":
        return torch.randint(0, spec.num_actions, (batch,), generator=gen)
    return torch.rand(batch, spec.num_actions, generator=gen) * 2 - 1


def test_paper_atari_parameter_count():
    model = build_model(ModelConfig(preset="paper"), ATARI)
    counts = parameter_breakdown(model)
    print("paper Atari net parameters:", counts)
    assert counts["total"] == pytest.approx(8.4e6, rel=0.02)
    assert counts["acting"] == pytest.approx(2.9e6, rel=0.04)
    assert model.latent_shape == (64, 6, 6)
    assert model.value_support.bins == 601 and model.value_support.max == 300
    assert model.use_value_prefix and model.reward_head.lstm.hidden_size == 512
    assert model.simsiam.projector[0].in_features == 2304


def test_proprio_paper_net_size():
    model = build_model(ModelConfig(), PROPRIO)
    total = parameter_breakdown(model)["total"]
    print("paper proprio net parameters:", total)
    assert 1.1e6 < total < 1.5e6  # EZ-V2: ~1.3M
    assert model.latent_shape == (128,) and not model.use_value_prefix
    assert model.value_support.bins == 51


@pytest.mark.parametrize("spec,cfg", [(ATARI, SMALL), (PIXELS_CONT, SMALL), (PROPRIO, ModelConfig()),
                                      (VECTOR_DISC, SMALL), (PIXELS_CONT, ModelConfig(preset="small",
                                                                                      action_embedding=16)),
                                      (PIXELS_CONT, ModelConfig(preset="small", pixel_latent="vector")),
                                      (ATARI, ModelConfig(preset="small", pixel_latent="vector"))])
def test_shapes_minmax_and_zero_init_heads(spec, cfg):
    gen = torch.Generator().manual_seed(0)
    model = build_model(cfg, spec).eval()
    B = 3
    width = spec.num_actions if spec.action_type == "discrete" else 2 * spec.num_actions
    with torch.no_grad():
        latent, value, policy = model.initial_inference(_obs(spec, B, gen))
        assert latent.shape == (B, *model.latent_shape)
        assert value.shape == (B, model.value_support.bins) and policy.shape == (B, width)
        lstm = model.initial_lstm_state(B, "cpu")
        nxt, prefix, lstm2, value2, policy2 = model.recurrent_inference(latent, _action(spec, B, gen), lstm)
    assert nxt.shape == latent.shape and prefix.shape == (B, model.reward_support.bins)
    assert value2.shape == value.shape and policy2.shape == policy.shape
    if model.use_value_prefix:
        assert lstm2[0].shape == lstm2[1].shape == (1, B, model.cfg.lstm_hidden)
    else:
        assert lstm is None and lstm2 is None
    for z in (latent, nxt):  # min-max normalised per sample
        flat = z.reshape(B, -1)
        torch.testing.assert_close(flat.min(1).values, torch.zeros(B))
        torch.testing.assert_close(flat.max(1).values, torch.ones(B), atol=1e-5, rtol=0)
    for logits in (value, value2, prefix, policy, policy2):  # zero-init last layers
        assert torch.count_nonzero(logits) == 0
    assert model.value_support.logits_to_scalar(value).abs().max() < 1e-4
    assert model.reward_support.logits_to_scalar(prefix).abs().max() < 1e-4
    assert model.project(latent, with_predictor=False).shape == (B, model.cfg.projection_dim)
    assert model.project(latent, with_predictor=True).shape == (B, model.cfg.projection_dim)


def test_value_prefix_lstm_carries_state():
    gen = torch.Generator().manual_seed(1)
    model = build_model(SMALL, ATARI).eval()
    with torch.no_grad():
        for p in model.reward_head.mlp[-1].parameters():
            p.normal_(generator=gen)  # make the head output depend on its input
        latent, _, _ = model.initial_inference(_obs(ATARI, 2, gen))
        a = _action(ATARI, 2, gen)
        _, p0, s1, _, _ = model.recurrent_inference(latent, a, model.initial_lstm_state(2, "cpu"))
        _, p1, _, _, _ = model.recurrent_inference(latent, a, s1)
    assert not torch.allclose(p0, p1)
    assert not torch.allclose(s1[0], torch.zeros_like(s1[0]))


def test_conv_latent_shapes_for_common_resolutions():
    assert conv_latent_shape((96, 96), 64, True) == (64, 6, 6)
    assert conv_latent_shape((84, 84), 64, True) == (64, 6, 6)
    assert conv_latent_shape((64, 64), 32, True) == (32, 4, 4)
    assert conv_latent_shape((64, 64), 32, False) == (32, 64, 64)


def test_mlp_supports_are_sized_from_the_task_reward_bound():
    bounded = dataclasses.replace(PROPRIO, discount=0.99, reward_bound=2.0)
    h = lambda x: (x + 1) ** 0.5 - 1 + 0.001 * x  # noqa: E731 (the transform, by hand)
    small = resolve_preset(SMALL, bounded)
    # rewards in [0, 2]: atoms 2 h(2) / 50 = 0.029 apart; values within 2 / (1 - 0.99) = 200
    assert small.reward_support_max == pytest.approx(h(2.0)) == pytest.approx(0.7341, abs=1e-4)
    assert small.value_support_max == pytest.approx(h(200.0))
    short = dataclasses.replace(bounded, max_episode_steps=50, discount=1.0)  # horizon = episode length
    assert resolve_preset(SMALL, short).value_support_max == pytest.approx(h(100.0))
    prefix = resolve_preset(ModelConfig(preset="small", use_value_prefix=True), bounded)
    assert prefix.reward_support_max == prefix.value_support_max  # sums of rewards need the value range
    explicit = resolve_preset(ModelConfig(preset="small", reward_support_max=3.0), bounded)
    assert explicit.reward_support_max == 3.0 and explicit.value_support_max == pytest.approx(h(200.0))
    unbounded = resolve_preset(SMALL, VECTOR_DISC)
    assert unbounded.reward_support_max == unbounded.value_support_max == 25.0
    assert resolve_preset(SMALL, ATARI).reward_support_max == 25.0  # the conv presets keep their supports
    model = build_model(SMALL, bounded)
    assert model.reward_support.scalar_range[1] == pytest.approx(2.0, rel=1e-6)


def test_presets_overrides_and_errors():
    resolved = resolve_preset(ModelConfig(preset="small", lstm_hidden=32), ATARI)
    assert resolved.lstm_hidden == 32 and resolved.projection_dim == 256 and resolved.predictor_hidden == 64
    assert resolve_preset(ModelConfig(use_value_prefix=True), PROPRIO).use_value_prefix
    with pytest.raises(ValueError, match="model.preset='huge'"):
        build_model(ModelConfig(preset="huge"), ATARI)
    with pytest.raises(ValueError, match="custom needs these fields"):
        resolve_preset(ModelConfig(preset="custom", channels=8), ATARI)
    with pytest.raises(ValueError, match="model.norm='group'"):
        resolve_preset(ModelConfig(norm="group"), ATARI)
    custom = dataclasses.replace(resolve_preset(SMALL, PROPRIO), preset="custom")
    assert build_model(custom, PROPRIO).cfg == custom


def test_vector_pixel_latent_uses_the_mlp_family_after_the_conv_trunk():
    resolved = resolve_preset(ModelConfig(preset="small", pixel_latent="vector", channels=16), PIXELS_CONT)
    assert (resolved.latent_dim, resolved.mlp_hidden, resolved.norm) == (64, 128, "layer")
    explicit = ModelConfig(preset="small", pixel_latent="vector", norm="batch")
    assert resolve_preset(explicit, PIXELS_CONT).norm == "batch"  # explicit fields win
    model = build_model(resolved, PIXELS_CONT)
    assert model.latent_shape == (64,)
    assert model.representation[2].trunk[0].in_features == 16 * 4 * 4  # flattened [16, 4, 4] conv map
    assert type(model.dynamics).__name__ == "MLPDynamics" and type(model.prediction).__name__ == "MLPPrediction"
    assert resolve_preset(ModelConfig(pixel_latent="vector"), PROPRIO).latent_dim == 128  # vectors: no change
    with pytest.raises(ValueError, match="model.pixel_latent='flat'"):
        resolve_preset(ModelConfig(pixel_latent="flat"), PIXELS_CONT)
    with pytest.raises(ValueError, match="latent_dim, mlp_hidden"):
        resolve_preset(dataclasses.replace(resolve_preset(SMALL, ATARI), preset="custom", pixel_latent="vector"),
                       ATARI)


def test_structured_config_node_is_accepted():
    node = OmegaConf.merge(OmegaConf.structured(ModelConfig), {"preset": "small", "head_hidden": [16]})
    model = build_model(node, VECTOR_DISC)
    assert model.cfg.head_hidden == [16] and model.cfg.preset == "small"


def test_bad_inputs_raise_clear_errors():
    model = build_model(SMALL, ATARI).eval()
    latent = torch.rand(2, *model.latent_shape)
    with pytest.raises(ValueError, match="integer tensor"):
        model.recurrent_inference(latent, torch.zeros(2, 1), model.initial_lstm_state(2, "cpu"))
    with pytest.raises(ValueError, match="do not match"):
        model.initial_inference(torch.zeros(2, 3, 96, 96, dtype=torch.uint8))
    cont = build_model(ModelConfig(), PROPRIO)
    with pytest.raises(ValueError, match=r"float \[B, 6\]"):
        cont.recurrent_inference(torch.rand(2, 128), torch.zeros(2, 3), None)


def test_bf16_autocast_channels_last_and_backward():
    gen = torch.Generator().manual_seed(2)
    model = build_model(SMALL, ATARI).to(memory_format=torch.channels_last).train()
    obs = _obs(ATARI, 4, gen).contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        latent, value, policy = model.initial_inference(obs)
        nxt, prefix, lstm, value2, _ = model.recurrent_inference(latent, _action(ATARI, 4, gen),
                                                                  model.initial_lstm_state(4, "cpu"))
        proj = model.project(nxt, with_predictor=True)
    for t in (value, policy, prefix, value2, proj, lstm[0]):
        assert t.dtype == torch.float32 and torch.isfinite(t).all()
    loss = value.logsumexp(-1).sum() + prefix.logsumexp(-1).sum() + proj.square().sum()
    loss.backward()
    assert model.prediction.heads.value[-1].weight.grad.abs().sum() > 0
    assert model.simsiam.projector[0].weight.grad.abs().sum() > 0


def test_augment_shift_and_intensity():
    gen = torch.Generator().manual_seed(3)
    img = torch.arange(10 * 12, dtype=torch.int64).reshape(1, 1, 10, 12).repeat(64, 2, 1, 1).to(torch.uint8)
    shifted = random_shift(img, pad=4, generator=gen)
    assert shifted.dtype == torch.uint8 and shifted.shape == img.shape
    dy = (shifted[:, 0, 5, 6].long() // 12) - 5  # row offset seen at the centre pixel
    dx = (shifted[:, 0, 5, 6].long() % 12) - 6
    assert dy.abs().max() <= 4 and dx.abs().max() <= 4 and len(set(dy.tolist())) > 3
    for n in range(64):  # a translation with edge replication, identical for all channels
        rows = (torch.arange(10) + dy[n]).clamp(0, 9)
        cols = (torch.arange(12) + dx[n]).clamp(0, 11)
        torch.testing.assert_close(shifted[n, 1], img[n, 0][rows][:, cols])
    obs = torch.full((5, 6, 12, 8, 8), 200, dtype=torch.uint8)  # [B, K+1, C, H, W]
    out = augment_observations(obs, generator=gen)
    assert out.shape == obs.shape and out.dtype == torch.float32
    factors = out[..., 0, 0, 0] / (200 / 255)
    assert ((factors >= 0.9 - 1e-6) & (factors <= 1.1 + 1e-6)).all() and factors.std() > 0
    torch.testing.assert_close(out, factors[..., None, None, None].expand_as(out) * (200 / 255))


@pytest.mark.parametrize("pad", [0, 1, 4])
def test_cpu_slice_shift_equals_the_gather_shift(pad):
    """The CPU path (one crop of the replicate-padded batch per image) is the gather path, offset for offset,
    uint8 or converted to float on the way."""
    gen = torch.Generator().manual_seed(pad)
    images = torch.randint(0, 256, (40, 6, 9, 11), generator=gen, dtype=torch.uint8)
    offsets = shift_offsets(40, pad, gen)
    assert offsets.abs().max() <= pad and (pad == 0 or len(set(offsets[:, 0].tolist())) > 1)
    expected = shift_by_gather(images, offsets)
    assert torch.equal(shift_by_slices(images, offsets, pad), expected)
    as_float = shift_by_slices(images, offsets, pad, torch.float32)
    assert as_float.dtype == torch.float32 and torch.equal(as_float, expected.float())
    with pytest.raises(ValueError, match="pad=-1"):
        shift_offsets(3, -1)


def test_augment_keeps_float_inputs_in_their_scale():
    obs = torch.full((4, 3, 8, 8), 0.5)
    out = augment_observations(obs, generator=torch.Generator().manual_seed(0))
    factors = out[:, 0, 0, 0] / 0.5
    assert ((factors >= 0.9 - 1e-6) & (factors <= 1.1 + 1e-6)).all() and factors.std() > 0
    assert obs.eq(0.5).all()  # the input is not modified in place


def test_batch_projection_norm_standardises_projections_and_layer_keeps_the_old_head():
    """EZ's projector ends with a BatchNorm1d: in training mode every projection dimension has zero mean
    and unit variance over the batch, so the projections of different observations cannot all be one
    vector (the collapse seen with LayerNorm projectors on the vector pixel latent)."""
    gen = torch.Generator().manual_seed(0)
    cfg = ModelConfig(preset="small", pixel_latent="vector")
    assert resolve_preset(cfg, PIXELS_CONT).projection_norm == "batch"
    model = build_model(cfg, PIXELS_CONT).train()
    assert isinstance(model.simsiam.projector[-1], torch.nn.BatchNorm1d)
    # nearly identical latents (as from near-identical frames) still give standardised projections
    latent = 0.5 + 1e-3 * torch.randn(64, *model.latent_shape, generator=gen)
    proj = model.project(latent, with_predictor=False)
    assert proj.mean(0).abs().max() < 1e-4
    assert torch.allclose(proj.std(0, unbiased=False), torch.ones(proj.shape[1]), atol=5e-2)
    layer = build_model(dataclasses.replace(cfg, projection_norm="layer"), PIXELS_CONT).train()
    assert isinstance(layer.simsiam.projector[-1], torch.nn.Linear)
    assert isinstance(layer.simsiam.projector[1], torch.nn.LayerNorm)
    assert layer.project(latent, with_predictor=False).std(0).mean() < 0.1  # nothing spreads them apart
    with pytest.raises(ValueError, match="model.projection_norm='group'"):
        resolve_preset(ModelConfig(projection_norm="group"), PIXELS_CONT)
