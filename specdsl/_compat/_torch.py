"""torch's private APIs, reached from here only (tests/compat/test_torch_compat.py fails naming the torch version
when an upgrade changes one of them).

What they are for: telling torch.compile's own failures (dynamo's and inductor's, all subclasses of
``torch._dynamo.exc.TorchDynamoException``) from any other error of a training step, so that ``train.compile``
on a machine where it cannot work is one message. torch is imported inside the function.
"""

from __future__ import annotations


def compile_errors() -> tuple[type[BaseException], ...]:
    """The base class of the exceptions torch.compile raises when it fails to compile a step."""
    import torch._dynamo.exc

    return (torch._dynamo.exc.TorchDynamoException,)
