"""CPU numerics pinned before torch and numpy load, so that every x86 host computes the same bits.

A float32 result on a CPU depends on how its sums are cut and vectorised: the thread count (how a reduction is
split), ATen's kernel width (AVX2 or AVX-512), the instruction set oneDNN's JIT targets (convolutions), MKL's
code branch (matrix products) and OpenBLAS's kernel (numpy, scipy). Each library reads its setting from the
environment once, when it loads, so ``pin_numerics`` sets all of them before torch or numpy is imported, for
this process and every process it starts (torchrun workers, notebook kernels), overriding a user's own values,
and then turns on torch's deterministic algorithms. AVX2 is the widest instruction set every x86 host in use
has: an AVX-512 host then computes what an AVX2-only host does.

``DMLFACES_NUMERICS=native`` leaves all of it to the host: faster on wide machines, results host-dependent.
GPU numerics are not pinned (they differ between GPU models anyway).
"""

from __future__ import annotations

import os
import sys

from dmlfaces.errors import UserError

MODE_VARIABLE = "DMLFACES_NUMERICS"
MODES = ("pinned", "native")
THREADS = 2  # fixed, not the host's core count: the thread count decides how each parallel sum is split

PINNED = {
    "OMP_NUM_THREADS": str(THREADS),  # torch's intra-op pool (ATen and oneDNN run on OpenMP)
    "MKL_NUM_THREADS": str(THREADS),
    "OPENBLAS_NUM_THREADS": str(THREADS),  # numpy's and scipy's BLAS
    # Intel's conditions for reproducible MKL: no run-time shrinking of the thread pool.
    "OMP_DYNAMIC": "FALSE",
    "MKL_DYNAMIC": "FALSE",
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's vectorised kernels (else AVX-512 where the host has it)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN's JIT convolutions
    # MKL's conditional numerical reproducibility. COMPATIBLE (SSE2) is the one fixed branch MKL also honours
    # on AMD processors: AVX2 (or AVX2,STRICT) is ignored there in favour of AUTO, which follows the host.
    "MKL_CBWR": "COMPATIBLE",
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS's AVX2 kernels (else SkylakeX on AVX-512 Intel hosts)
}


def pin_numerics(configure_torch: bool = True) -> str:
    """Pin the CPU numerics of this process and its children, unless ``DMLFACES_NUMERICS=native``; return the mode.

    Call it before torch or numpy is imported. A process that has loaded either already (the command line
    called from Python, as the tests do) is left as it is, since those libraries have read their settings,
    and ``"preloaded"`` is returned. ``configure_torch=False`` sets the environment only, for a process that
    computes nothing with torch itself (``check-params``; ``notebook``, whose kernel is a child): importing
    torch to switch on its deterministic algorithms would cost such a stage seconds for nothing.
    """
    mode = os.environ.get(MODE_VARIABLE, "pinned")
    if mode not in MODES:
        raise UserError(
            f"{MODE_VARIABLE}={mode!r} is not a numerics mode: unset it or use 'pinned' (the same results on "
            "every x86 host) or 'native' (the host's own threads and instruction sets: faster, host-dependent)"
        )
    if mode == "native":
        return mode
    if "torch" in sys.modules or "numpy" in sys.modules:
        return "preloaded"
    os.environ.update(PINNED)
    if not configure_torch:
        return mode
    import torch

    # On a GPU host deterministic mode would slow or refuse CUDA kernels (cuBLAS needs CUBLAS_WORKSPACE_CONFIG).
    if not torch.cuda.is_available():
        torch.use_deterministic_algorithms(True)
    return mode
