"""Errors raised by the renderer package (and re-used by mofa_bench for input checks)."""

from __future__ import annotations


class InputError(ValueError):
    """A public function received a tensor of the wrong shape, dtype, device or value.

    The message names the argument, what was expected and what was given.
    """


class RendererError(RuntimeError):
    """A renderer failed for a reason other than bad input."""


class RendererUnavailableError(RendererError):
    """A renderer backend cannot run here (package missing, no CUDA, ...).

    The message says what is missing and how to install or enable it.
    """
