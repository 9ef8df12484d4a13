"""Boundary checks for public tensor inputs, and the error they raise: the leaf every package uses.

``renderers``, ``mofa_bench`` and ``evaluation`` all validate their public tensor inputs
with :func:`check_tensor` and raise :class:`InputError`; this module imports nothing of
theirs.

One helper, :func:`check_tensor`, validates a tensor against a symbolic shape such as
``"B N 3"``. Symbols bind on first use within one call of :func:`check_tensor` (pass
``dims`` to share bindings across several tensors); integers must match exactly and
``*`` matches any number of leading dimensions. Failures raise
:class:`InputError` naming the argument, the expectation and what was
given.
"""

from __future__ import annotations

from typing import MutableMapping

import torch

__all__ = ["InputError", "check_tensor"]


class InputError(ValueError):
    """A public function received a tensor (or value) of the wrong shape, dtype, device or value.

    The message names the argument, what was expected and what was given.
    """


def check_tensor(
    name: str,
    value: object,
    shape: str,
    dims: MutableMapping[str, int] | None = None,
    *,
    floating: bool = False,
    integer: bool = False,
    finite: bool = False,
) -> torch.Tensor:
    """Validate ``value`` and return it unchanged.

    Args:
        name: argument name used in the error message.
        value: the object to check; must be a ``torch.Tensor``.
        shape: space-separated dims, e.g. ``"B N 3"``; a leading ``"*"`` allows any
            number of leading dims.
        dims: symbol bindings shared between calls (updated in place).
        floating: require a floating dtype.
        integer: require an integer dtype.
        finite: require every element to be finite (no NaN/Inf).

    Raises:
        InputError: on any mismatch.
    """
    if not isinstance(value, torch.Tensor):
        raise InputError(f"{name}: expected a torch.Tensor of shape ({shape}), got {type(value).__name__}")
    dims = {} if dims is None else dims
    tokens = shape.split()
    actual = tuple(value.shape)
    if tokens and tokens[0] == "*":
        tokens = tokens[1:]
        if len(actual) < len(tokens):
            raise InputError(f"{name}: expected shape (*, {' '.join(tokens)}), got {actual}")
        actual = actual[len(actual) - len(tokens):]
    elif len(actual) != len(tokens):
        raise InputError(f"{name}: expected shape ({shape}) with {len(tokens)} dims, got {tuple(value.shape)}")
    for token, size in zip(tokens, actual):
        if token.isdigit():
            if size != int(token):
                raise InputError(f"{name}: expected shape ({shape}), got {tuple(value.shape)}")
        elif token in dims:
            if size != dims[token]:
                raise InputError(
                    f"{name}: expected shape ({shape}) with {token}={dims[token]}, got {tuple(value.shape)}"
                )
        else:
            dims[token] = size
    if floating and not value.dtype.is_floating_point:
        raise InputError(f"{name}: expected a floating-point tensor, got dtype {value.dtype}")
    if integer and (value.dtype.is_floating_point or value.dtype.is_complex or value.dtype == torch.bool):
        raise InputError(f"{name}: expected an integer tensor, got dtype {value.dtype}")
    if finite and not bool(torch.isfinite(value).all()):
        raise InputError(f"{name}: contains NaN or Inf values")
    return value
