"""The torch loop's speed settings: ``train.channels_last`` (the memory format) and ``train.compile``.

channels_last (NHWC strides for the model's 4-D weights and the batches): ``auto`` turns it on where it was
measured faster. On the CPU (this project's 2-core machine, torch 2.13, the MNIST lab CNN at batch 128, NCHW and
channels_last steps interleaved 40 times on a shared machine): best step 77 ms instead of 106 ms with 2 threads
(median 151 vs 171), 120 vs 152 ms with 1 thread (median 138 vs 171); benchmarks/train_speed.py prints the same
comparison (``plain, channels_last``) on any machine. On CUDA in bf16 or fp16, where cuDNN's tensor-core
convolutions take NHWC and NCHW tensors are transposed around each one. Off on CUDA in fp32 and on MPS.

``train.compile: true`` wraps the model in ``torch.compile`` for the training steps (evaluation runs the model
itself: the same parameters, no second compile for inference mode). A machine where torch.compile cannot work
(no C++ compiler for its inductor backend, an unsupported Python) is one :class:`TrainError`, before training
or at the step that compiles, never a traceback.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from .._compat._torch import compile_errors
from ..errors import TrainError

__all__ = ["COMPILE_HINT", "compile_errors", "compile_failure", "compiled", "use_channels_last"]

COMPILE_HINT = (
    "Set train.compile: false (the model trains the same, uncompiled), or install a C++ compiler "
    "(gcc or clang: torch.compile's inductor backend builds its kernels with one)."
)


def use_channels_last(setting: bool | str, device_type: str, precision: str) -> bool:
    """Whether the torch loop runs in channels_last for ``train.channels_last`` = ``setting``.

    >>> use_channels_last("auto", "cpu", "fp32"), use_channels_last("auto", "cuda", "fp32")
    (True, False)
    >>> use_channels_last("auto", "cuda", "bf16"), use_channels_last(False, "cpu", "fp32")
    (True, False)
    """
    if setting != "auto":
        return bool(setting)
    if device_type == "cpu":
        return True
    return device_type == "cuda" and precision in ("bf16", "fp16")


def _compiler() -> str | None:
    """The C++ compiler torch's inductor would use (``$CXX``, else one on the PATH), or None."""
    asked = os.environ.get("CXX")
    if asked:
        return shutil.which(asked)
    return next((found for name in ("g++", "c++", "clang++") if (found := shutil.which(name))), None)


def compile_failure(e: BaseException) -> TrainError:
    """The TrainError for torch.compile's failure ``e``: its first line, and the way out."""
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    return TrainError(f"train.compile: torch.compile failed on this machine: {first}", hint=COMPILE_HINT)


def compiled(model: Any) -> Any:
    """``torch.compile(model)``, or a TrainError when this machine has no C++ compiler for it."""
    import torch

    if _compiler() is None:
        raise TrainError(
            "train.compile: torch.compile cannot work on this machine: no C++ compiler found "
            f"(looked for {os.environ.get('CXX') or 'g++, c++ and clang++'}).",
            hint=COMPILE_HINT,
        )
    try:
        return torch.compile(model)
    except RuntimeError as e:  # e.g. a Python version torch.compile does not support
        raise compile_failure(e) from None
