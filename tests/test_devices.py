"""Device choice per process (the DDP paths themselves are tested by the trainers' 2-gloo runs)."""

from __future__ import annotations

import torch

from dmlfaces.devices import resolve_device


def test_each_torchrun_process_gets_its_own_gpu_unless_one_is_named():
    assert resolve_device("cuda", local_rank=3) == torch.device("cuda", 3)
    assert resolve_device("cuda:1", local_rank=3) == torch.device("cuda", 1)
    assert resolve_device("cpu", local_rank=3) == torch.device("cpu")
    expected = torch.device("cuda", 2) if torch.cuda.is_available() else torch.device("cpu")
    assert resolve_device("auto", local_rank=2) == expected
