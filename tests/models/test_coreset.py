"""Differentiable farthest-point sampling: picks, K_eff, gradients to gamma."""

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
        picks, pick_mask = farthest_point_picks(features, norms, torch.ones(1, 30, dtype=torch.bool), 4,
                                                torch.tensor(gamma), sample=False)
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
    expected = norms ** 0.7 * (1 - (features[0] @ features[0, 0])) / 2
    torch.testing.assert_close(d, expected)
    assert abs(float(d[0, 0])) < 1e-6
