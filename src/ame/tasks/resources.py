"""Honouring a task's ``resources`` on one machine.

- ``cpu``: thread-pool variables (OMP, MKL, OpenBLAS, numexpr) set to the
  rounded-up core count, and the process pinned to that many of the cores this
  process may use, so numpy and friends do not oversubscribe a shared box.
- ``memory``: a hard limit on the resident memory of the task's whole process
  tree, watched by the runner (see ``process.py``), which kills the tree and
  reports ``killed: memory limit 10G exceeded``. RSS is watched rather than
  ``RLIMIT_AS`` because address space is not memory: a Python that imports
  numpy or starts threads reserves gigabytes it never touches, so an address
  limit kills healthy tasks, while an RSS limit matches what Kubernetes enforces.
- ``nvidia.com/gpu``: ``CUDA_VISIBLE_DEVICES`` set to the first N devices, or
  ``ResourceUnavailableError`` when the machine has fewer (``--cpu-only``
  runs such a task with no GPU visible instead).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

# ``format_bytes`` lives in ``ame._system``; re-exported for older imports.
from ame._system import format_bytes as format_bytes
from ame.errors import ResourceUnavailableError
from ame.spec.model import Resources

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def available_cores() -> list[int]:
    """The CPU ids this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def gpu_count() -> int:
    """GPUs visible through ``nvidia-smi -L`` (0 when the tool is absent or fails)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    if out.returncode != 0:
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


@dataclass
class Limits:
    """What the runner applies: extra variables, a pre-exec hook and a memory cap."""

    env: dict[str, str] = field(default_factory=dict)
    cores: list[int] | None = None
    memory: int | None = None

    def preexec(self) -> Callable[[], None] | None:
        """A function run in the child before exec that pins it to ``cores``."""
        cores = self.cores
        if not cores or not hasattr(os, "sched_setaffinity"):
            return None

        def pin() -> None:
            os.sched_setaffinity(0, cores)

        return pin


def limits_for(
    resources: Resources, count_gpus: Callable[[], int] = gpu_count, *, cpu_only: bool = False
) -> Limits:
    """Translate ``resources`` into what one machine can enforce.

    ``cpu_only`` (``--cpu-only``) lets a task written for a GPU node run on a
    laptop: the GPU request is dropped and CUDA is shown no device, so the
    code's own CPU fallback is taken instead of a half-visible device.
    """
    limits = Limits()
    if resources.cpu is not None and resources.cpu > 0:
        threads = max(1, math.ceil(resources.cpu))
        cores = available_cores()
        limits.cores = cores[: min(threads, len(cores))]
        for name in THREAD_VARIABLES:
            limits.env[name] = str(threads)
    if resources.gpu and cpu_only:
        limits.env["CUDA_VISIBLE_DEVICES"] = ""
    elif resources.gpu:
        have = count_gpus()
        if have < resources.gpu:
            raise ResourceUnavailableError(
                f"the task asks for {resources.gpu} GPU(s) (nvidia.com/gpu) and this machine "
                f"has {have}; run it with --cpu-only to run it without a GPU"
            )
        limits.env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(resources.gpu))
    if resources.memory:
        limits.memory = int(resources.memory)
    return limits
