"""Name → renderer backend registry."""

from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

import torch

from renderers.base import Availability, Renderer
from mofa_checks import InputError
from renderers.errors import RendererUnavailableError

_REGISTRY: dict[str, type[Renderer]] = {}
R = TypeVar("R", bound=type[Renderer])


def register_renderer(name: str) -> Callable[[R], R]:
    """Class decorator: make a backend selectable as ``renderer: <name>``."""

    def wrap(cls: R) -> R:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def renderer_names() -> list[str]:
    """All registered backend names (available or not)."""
    return sorted(_REGISTRY)


def renderer_class(name: str) -> type[Renderer]:
    """The backend class registered as ``name`` (available here or not).

    Raises:
        InputError: unknown name (the message lists the known ones).
    """
    if name not in _REGISTRY:
        raise InputError(f"unknown renderer {name!r}; known renderers: {', '.join(renderer_names())}")
    return _REGISTRY[name]


def renderer_options(name: str) -> list[str]:
    """The keyword options the backend ``name`` accepts (its constructor's parameters)."""
    parameters = inspect.signature(renderer_class(name).__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in parameters if p.name != "self" and p.kind in named]


def available_renderers(device: torch.device | str | None = None) -> dict[str, Availability]:
    """Each registered backend's :class:`Availability` on ``device``."""
    return {name: _REGISTRY[name].availability(device) for name in renderer_names()}


def get_renderer(name: str, device: torch.device | str | None = None, **options: Any) -> Renderer:
    """Instantiate a backend by name.

    Raises:
        InputError: unknown name (the message lists the known ones).
        RendererUnavailableError: the backend cannot run here (says what is missing and
            how to install it).
    """
    cls = renderer_class(name)
    state = cls.availability(device)
    if not state.available:
        raise RendererUnavailableError(f"renderer {name!r} is unavailable: {state.reason}. Fix: {state.fix}")
    return cls(**options)
