"""Margin losses: every choice trains, AdaFace's margin adapts to the feature norm."""

from __future__ import annotations

import pytest
import torch

from dmlfaces.models.losses import LOSSES, AdaFaceLoss, build_loss


@pytest.mark.parametrize("name", LOSSES)
def test_each_loss_decreases_when_optimised(name: str) -> None:
    torch.manual_seed(0)
    features = torch.randn(32, 16, requires_grad=True)
    labels = torch.arange(32) % 4
    loss = build_loss(name, 4, 16)
    optimiser = torch.optim.SGD([features, *loss.parameters()], lr=0.5)
    first = loss(features, labels).item()
    for _ in range(30):
        optimiser.zero_grad()
        loss(features, labels).backward()
        optimiser.step()
    assert loss(features, labels).item() < first


def test_adaface_penalises_a_low_norm_sample_differently_from_a_high_norm_one() -> None:
    torch.manual_seed(0)
    loss = AdaFaceLoss(num_classes=3, embedding_dim=8, t_alpha=1.0)
    direction = torch.nn.functional.normalize(loss.kernel[:, 0].detach(), dim=0).repeat(4, 1)
    norms = torch.tensor([[5.0], [5.0], [50.0], [50.0]])
    features, labels = direction * norms, torch.zeros(4, dtype=torch.long)
    per_sample = []
    for i in (0, 2):
        loss.batch_mean.fill_(27.5)
        loss.batch_std.fill_(22.5)
        loss.eval()  # keep the statistics fixed
        per_sample.append(loss(features[i : i + 1], labels[i : i + 1]).item())
    # Same direction, different norm: the margin (and so the loss) changes with the norm.
    assert per_sample[0] != pytest.approx(per_sample[1])


def test_unknown_loss_names_the_choices() -> None:
    with pytest.raises(ValueError, match="adaface"):
        build_loss("softmax", 2, 4)
