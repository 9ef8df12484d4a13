"""Errors raised by the renderer package besides bad input (:class:`mofa_checks.InputError`)."""

from __future__ import annotations


class RendererError(RuntimeError):
    """A renderer failed for a reason other than bad input."""


class RendererUnavailableError(RendererError):
    """A renderer backend cannot run here (package missing, no CUDA, ...).

    The message says what is missing and how to install or enable it.
    """
