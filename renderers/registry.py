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
        InputError: unknown name (the message lists the known ones), a ``device`` torch
            does not know (``"gpu"``), or an option the backend does not take.
        RendererUnavailableError: the backend cannot run here (says what is missing and
            how to install it).
    """
    cls = renderer_class(name)
    device = _device(device)
    _check_options(name, cls, options)
    state = cls.availability(device)
    if not state.available:
        raise RendererUnavailableError(f"renderer {name!r} is unavailable: {state.reason}. Fix: {state.fix}")
    return cls(**options)


def _device(device: Any) -> torch.device | None:
    """``device`` as a :class:`torch.device` (``None`` stays ``None``), or an InputError naming it."""
    if device is None or isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        try:
            return torch.device(device)
        except RuntimeError:
            pass
    raise InputError(f"device: expected 'cpu', 'cuda', 'cuda:i' or a torch.device, got {device!r}")


def _check_options(name: str, cls: type[Renderer], options: dict[str, Any]) -> None:
    """Refuse an option the backend's constructor does not take, naming it and the known ones."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    if cls.__init__ is not object.__init__ and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return  # a backend that takes any keyword checks its own
    known = renderer_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise InputError(f"renderer {name!r}: unknown option(s) {', '.join(unknown)}; "
                         f"known options: {', '.join(known) or 'none'}")
