"""Differentiable farthest-point sampling: picks, K_eff, gradients to gamma."""

import pytest
import torch
import torch.nn.functional as F

from dmlfaces.models.coreset import farthest_point_picks, quality_distance


def _set(n: int, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(1, n, d, generator=g), dim=-1), torch.rand(1, n, generator=g) * 10 + 1


def _naive_fps(features: torch.Tensor, norms: torch.Tensor, k: int, gamma: float) -> list[int]:
    """Farthest-point sampling written plainly, one face at a time."""
    f, q = features[0], norms[0]
    picked = [int(q.argmax())]
    for _ in range(k - 1):
        d = [min(float(q[i]) ** gamma * (1 - float(f[i] @ f[c])) / 2 for c in picked) for i in range(len(q))]
        picked.append(max(range(len(d)), key=d.__getitem__))
    return picked


def test_evaluation_picks_follow_farthest_point_sampling():
    features, norms = _set(30)
    for gamma in (0.0, 0.5, 2.0):
        picks, pick_mask = farthest_point_picks(
            features, norms, torch.ones(1, 30, dtype=torch.bool), 4, torch.tensor(gamma), sample=False
        )
        assert picks.argmax(-1)[0].tolist() == _naive_fps(features, norms, 4, gamma)
        assert pick_mask.all()


def test_first_pick_is_the_best_face_and_padding_is_never_picked():
    features, norms = _set(6)
    norms[0, 5] = 100.0  # the best face sits in a padded slot: it must be ignored
    mask = torch.tensor([[True] * 5 + [False]])
    for sample in (False, True):
        picks, _ = farthest_point_picks(features, norms, mask, 5, torch.tensor(0.1), sample=sample)
        assert picks[0, :, 5].sum() == 0
        assert int(picks[0, 0].argmax()) == int(norms[0, :5].argmax())


def test_k_eff_is_min_of_k_and_set_size():
    features, norms = _set(2)
    _, pick_mask = farthest_point_picks(features, norms, torch.ones(1, 2, dtype=torch.bool), 5, torch.tensor(0.0), sample=False)
    assert pick_mask[0].tolist() == [True, True, False, False, False]


def test_training_picks_are_one_hot_with_gradients_to_gamma():
    features, norms = _set(20)
    gamma = torch.tensor(0.5, requires_grad=True)
    picks, _ = farthest_point_picks(features, norms, torch.ones(1, 20, dtype=torch.bool), 3, gamma, sample=True)
    assert torch.equal(picks.detach().sum(-1), torch.ones(1, 3))
    assert set(picks.detach().unique().tolist()) <= {0.0, 1.0}
    (picks * torch.arange(20.0)).sum().backward()
    assert gamma.grad is not None and gamma.grad != 0


def test_quality_distance_matches_the_published_formula():
    features, norms = _set(5)
    d = quality_distance(features, norms, features[:, 0], torch.tensor(0.7))
    expected = norms**0.7 * (1 - (features[0] @ features[0, 0])) / 2
    torch.testing.assert_close(d, expected)
    assert abs(float(d[0, 0])) < 1e-6


def _frequencies(rows: torch.Tensor, n: int) -> torch.Tensor:
    """(draws, n) one-hot rows -> (n,) share of draws picking each face."""
    return rows.argmax(-1).bincount(minlength=n).double() / len(rows)


def test_official_training_picks_follow_softmax_of_the_raw_distance():
    """``pick_logits="distance"``: the second pick is drawn from softmax(d) (re-picking allowed), the first,
    with ``first_pick="sample"``, from softmax(q); 40,000 draws put each frequency within 0.012 (over 5
    standard errors) of its probability."""
    features, norms = _set(6, seed=4)
    norms = norms / 5  # norms of about 0.2 to 2.2: a first-pick distribution far from one-hot
    draws = 40_000
    batch_features, batch_norms = features.expand(draws, -1, -1), norms.expand(draws, -1)
    mask = torch.ones(draws, 6, dtype=torch.bool)
    gamma = torch.tensor(0.7)
    torch.manual_seed(0)
    picks, _ = farthest_point_picks(
        batch_features, batch_norms, mask, 2, gamma, sample=True, logits_rule="distance", first_pick="argmax"
    )
    first = int(norms.argmax())
    d = quality_distance(features, norms, features[:, first], gamma)[0]
    assert (picks[:, 0].argmax(-1) == first).all()
    torch.testing.assert_close(_frequencies(picks[:, 1], 6), torch.softmax(d.double(), 0), atol=0.012, rtol=0)
    assert _frequencies(picks[:, 1], 6)[first] > 0.05  # the first pick (d = 0) is drawn again
    picks, _ = farthest_point_picks(
        batch_features, batch_norms, mask, 1, gamma, sample=True, logits_rule="distance", first_pick="sample"
    )
    torch.testing.assert_close(_frequencies(picks[:, 0], 6), torch.softmax(norms[0].double(), 0), atol=0.012, rtol=0)


def test_our_training_picks_are_proportional_to_the_distance_and_never_repeat():
    features, norms = _set(6, seed=4)
    draws = 40_000
    mask = torch.ones(draws, 6, dtype=torch.bool)
    gamma = torch.tensor(0.7)
    torch.manual_seed(1)
    picks, _ = farthest_point_picks(features.expand(draws, -1, -1), norms.expand(draws, -1), mask, 2, gamma, sample=True)
    d = quality_distance(features, norms, features[:, int(norms.argmax())], gamma)[0].double()
    torch.testing.assert_close(_frequencies(picks[:, 1], 6), d / d.sum(), atol=0.012, rtol=0)
    assert _frequencies(picks[:, 1], 6)[int(norms.argmax())] == 0


@pytest.mark.parametrize("first_pick", ["argmax", "sample"])
def test_evaluation_picks_are_the_argmax_under_either_logit_rule(first_pick):
    features, norms = _set(30)
    mask = torch.ones(1, 30, dtype=torch.bool)
    expected = _naive_fps(features, norms, 4, 0.5)
    for rule in ("log_distance", "distance"):
        picks, _ = farthest_point_picks(
            features, norms, mask, 4, torch.tensor(0.5), sample=False, logits_rule=rule, first_pick=first_pick
        )
        assert picks.argmax(-1)[0].tolist() == expected


def test_padding_is_never_picked_under_the_official_rules():
    features, norms = _set(6)
    norms[0, 5] = 100.0
    mask = torch.tensor([[True] * 5 + [False]])
    torch.manual_seed(2)
    picks, _ = farthest_point_picks(
        features.expand(500, -1, -1),
        norms.expand(500, -1),
        mask.expand(500, -1),
        4,
        torch.tensor(0.1),
        sample=True,
        logits_rule="distance",
        first_pick="sample",
    )
    assert picks[:, :, 5].sum() == 0


def test_unknown_pick_rules_are_refused():
    features, norms = _set(4)
    with pytest.raises(ValueError, match="log_distance"):
        farthest_point_picks(
            features, norms, torch.ones(1, 4, dtype=torch.bool), 2, torch.tensor(0.0), sample=False, logits_rule="softmax"
        )
