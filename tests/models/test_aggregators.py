"""Set aggregators: invariances, edge cases, gradients, the chunked path for unbounded sets."""

import pytest
import torch
import torch.nn.functional as F

from dmlfaces.models.aggregators import AGGREGATORS, CoresetAggregator, build_aggregator

D = 32


def _batch(sizes: list[int], seed: int = 0, pad_to: int | None = None):
    g = torch.Generator().manual_seed(seed)
    n = pad_to or max(sizes)
    features = F.normalize(torch.randn(len(sizes), n, D, generator=g), dim=-1)
    norms = torch.rand(len(sizes), n, generator=g) * 20 + 5
    mask = torch.arange(n)[None, :] < torch.tensor(sizes)[:, None]
    media = torch.randint(0, 3, (len(sizes), n), generator=g)
    return features, norms, mask, media


def _models():
    torch.manual_seed(0)
    return {
        name: build_aggregator(name, D, heads=4, k=3) if name == "coreset" else build_aggregator(name, D) for name in AGGREGATORS
    }


@pytest.mark.parametrize("name", AGGREGATORS)
def test_order_invariance(name):
    model = _models()[name].eval()
    features, norms, mask, media = _batch([17])
    perm = torch.randperm(17, generator=torch.Generator().manual_seed(3))
    a, na = model(features, norms, mask, media)
    b, nb = model(features[:, perm], norms[:, perm], mask[:, perm], media[:, perm])
    assert (a - b).abs().max() < 1e-6 and (na - nb).abs().max() < 1e-4 * na.abs().max()


@pytest.mark.parametrize("name", AGGREGATORS)
def test_padding_changes_nothing(name):
    model = _models()[name].eval()
    features, norms, mask, media = _batch([5, 9])
    wide = _batch([5, 9], pad_to=40, seed=1)  # other values in the padded slots
    wide[0][:, :9], wide[1][:, :9], wide[3][:, :9] = features, norms, media
    a, _ = model(features, norms, mask, media)
    b, _ = model(*wide)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", AGGREGATORS)
def test_degenerate_sets_are_defined(name):
    model = _models()[name].eval()
    features, norms, mask, media = _batch([1, 2, 6])
    features[2] = features[2, :1]  # all-equal features
    norms[1] = 0.0  # zero-norm features
    features[1] = 0.0
    with torch.no_grad():
        out, out_norms = model(features, norms, mask, media)
    assert torch.isfinite(out).all() and torch.isfinite(out_norms).all()
    # A set of one face is described by that face.
    assert float(out[0] @ features[0, 0]) > 0.5 or name == "attention_pooling"


def test_an_empty_set_is_an_error():
    features, norms, mask, media = _batch([3, 1])
    mask[1] = False
    with pytest.raises(ValueError, match="no faces"):
        _models()["mean"](features, norms, mask, media)


def test_media_then_template_weights_each_media_once():
    features, norms, mask, media = _batch([6])
    media[0] = torch.tensor([0, 0, 0, 1, 2, 2])
    out, _ = build_aggregator("media_template", D)(features, norms, mask, media)
    f = features[0]
    expected = F.normalize(f[:3].mean(0) + f[3] + f[4:].mean(0), dim=0)
    torch.testing.assert_close(out[0], expected)


def test_gradients_reach_gamma_and_every_attention_parameter():
    model = CoresetAggregator(D, heads=4, k=3, dropout=0.0).train()
    features, norms, mask, media = _batch([12, 7, 3])
    out, out_norms = model(features, norms, mask, media)
    (out * torch.randn_like(out)).sum().add(out_norms.sum() * 1e-3).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_gamma_can_be_fixed():
    model = CoresetAggregator(D, heads=4, k=3, gamma=0.0, learn_gamma=False)
    assert "gamma" not in dict(model.named_parameters()) and float(model.gamma) == 0.0


@pytest.mark.parametrize("k", [1, 3, 8])
def test_streamed_set_equals_in_memory_set(k):
    torch.manual_seed(1)
    model = CoresetAggregator(D, heads=4, k=k).eval()
    features, norms, mask, _ = _batch([1000], seed=5)
    expected, expected_norm = model(features, norms, mask)

    def chunks():
        for start in range(0, 1000, 96):
            yield features[0, start : start + 96], norms[0, start : start + 96]

    got, got_norm = model.forward_stream(chunks)
    torch.testing.assert_close(got, expected[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(got_norm, expected_norm[0], atol=1e-3, rtol=1e-5)


def test_streaming_needs_evaluation_mode():
    with pytest.raises(RuntimeError, match="eval"):
        CoresetAggregator(D, heads=4).train().forward_stream(lambda: iter(()))


def test_unknown_aggregator_names_the_choices():
    with pytest.raises(ValueError, match="norm_weighted"):
        build_aggregator("max", D)


def test_heads_must_divide_dim():
    with pytest.raises(ValueError, match="divisible"):
        CoresetAggregator(30, heads=4)


def test_attention_equals_torch_multihead_attention():
    from dmlfaces.models.aggregators import Attention

    torch.manual_seed(0)
    ours = Attention(D, 4, 0.0)
    reference = torch.nn.MultiheadAttention(D, 4, batch_first=True)
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
        reference.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        reference.out_proj.weight.copy_(ours.out.weight)
        reference.out_proj.bias.copy_(ours.out.bias)
    query, keys = torch.randn(2, 3, D), torch.randn(2, 11, D)
    mask = torch.ones(2, 11, dtype=torch.bool)
    mask[1, 7:] = False
    expected, _ = reference(query, keys, keys, key_padding_mask=~mask)
    torch.testing.assert_close(ours(query, keys, keys, mask), expected, atol=1e-5, rtol=1e-5)


def test_a_huge_single_set_takes_the_chunked_path_with_the_same_result():
    torch.manual_seed(2)
    model = CoresetAggregator(D, heads=4, k=3).eval()
    n = CoresetAggregator.STREAM_ABOVE + 500
    features, norms, mask, _ = _batch([n, 3], seed=9)
    with torch.no_grad():
        batched, batched_norms = model(features, norms, mask)  # two sets: the in-memory path
        alone, alone_norm = model(features[:1], norms[:1], mask[:1])  # one huge set: chunks
    torch.testing.assert_close(alone[0], batched[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(alone_norm[0], batched_norms[0], atol=1e-3, rtol=1e-5)


def test_interleaved_norm_encoding_is_the_official_formula():
    """Channel 2j holds sin(2 pi q / 10000^(2j/D)) and 2j + 1 its cosine (get_proposal_pos_embed)."""
    from dmlfaces.models.aggregators import norm_encoding

    values = torch.tensor([[0.5, 17.25, 60.0]], dtype=torch.float64)
    got = norm_encoding(values, 8, "interleaved_2pi")
    j = torch.arange(4, dtype=torch.float64)
    angles = 2 * torch.pi * values[..., None] / 10000 ** (2 * j / 8)
    expected = torch.empty(1, 3, 8, dtype=torch.float64)
    expected[..., 0::2], expected[..., 1::2] = angles.sin(), angles.cos()
    torch.testing.assert_close(got, expected)
    ours = norm_encoding(values, 8)
    torch.testing.assert_close(ours[..., :4], (values[..., None] / 10000 ** (2 * j / 8)).sin())


def test_official_attention_layer_initialises_as_multihead_attention_and_drops_residuals_in_training():
    torch.manual_seed(0)
    model = CoresetAggregator(D, heads=4, k=3, dropout=0.5, attention="official")
    stacked = torch.cat(
        [model.cross_attention.query.weight, model.cross_attention.key.weight, model.cross_attention.value.weight]
    )
    bound = (6 / (D + 3 * D)) ** 0.5  # Xavier-uniform over the (3 D, D) input projection
    assert stacked.abs().max() <= bound and stacked.abs().max() > 0.9 * bound
    assert not model.cross_attention.key.bias.any() and not model.self_attention.out.bias.any()
    features, norms, mask, _ = _batch([9, 5])
    model.train()
    torch.manual_seed(1)
    first = model(features, norms, mask)[0]
    torch.manual_seed(2)
    assert not torch.allclose(first, model(features, norms, mask)[0])  # dropout on the residual branches
    ours = CoresetAggregator(D, heads=4, k=3, dropout=0.5)
    ours.load_state_dict(model.state_dict())  # the same parameters: only the dropout differs
    torch.testing.assert_close(ours.eval()(features, norms, mask), model.eval()(features, norms, mask))


def test_unknown_coreset_settings_name_the_choices():
    with pytest.raises(ValueError, match="interleaved_2pi"):
        CoresetAggregator(D, heads=4, norm_encoding="learned")


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_streamed_set_stays_on_the_inputs_device(device):
    """A set above ``STREAM_ABOVE`` faces on the inputs' device (the pick mask was built on the CPU: issue 15)."""
    torch.manual_seed(3)
    model = CoresetAggregator(D, heads=4, k=3).eval().to(device)
    n = CoresetAggregator.STREAM_ABOVE + 10
    features, norms, mask, _ = _batch([n], seed=11)
    features, norms, mask = features.to(device), norms.to(device), mask.to(device)
    with torch.no_grad():
        descriptor, norm = model(features, norms, mask)
        on_cpu, _ = model.cpu()(features.cpu(), norms.cpu(), mask.cpu())
    assert descriptor.device.type == device and norm.device.type == device
    torch.testing.assert_close(descriptor.cpu(), on_cpu, atol=1e-4, rtol=0)
