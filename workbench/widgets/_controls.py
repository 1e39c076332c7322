"""Controls built from a method's config dataclass, a device picker, a guarded callback.

A new explainer gets its controls for free: :class:`ConfigControls` turns every field of its
``config_class`` into a widget (``bool`` → checkbox, ``int`` / ``float`` → number box,
``Literal[...]`` → dropdown, ``str`` → text, anything else → a JSON text box) and reads them back
as keyword arguments for ``explain_pair(..., **params)``. Values that do not parse give a message,
never a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import json
import typing
from collections.abc import Callable
from typing import Any

import torch

__all__ = [
    "ConfigControls",
    "DeviceControl",
    "ParamError",
    "click_events",
    "device_options",
    "message_html",
]


class ParamError(ValueError):
    """A control value that does not parse (the message names the field and the value)."""


def message_html(text: str, kind: str = "error") -> str:
    """A one-line message for an ``HTML`` status widget (``error``, ``info`` or ``ok``)."""
    colour = {"error": "#b00020", "info": "#555", "ok": "#1b7f3b"}.get(kind, "#555")
    return f'<span class="wb-message wb-{kind}" style="color:{colour}">{html.escape(text)}</span>'


def _field_types(config_class: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config_class)
    except Exception:  # string annotations that do not resolve: fall back to the raw ones
        return {f.name: f.type for f in dataclasses.fields(config_class)}


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


class ConfigControls:
    """One widget per field of ``config_class``; :meth:`values` reads them back."""

    def __init__(self, config_class: type) -> None:
        import ipywidgets as W

        self.config_class = config_class
        self.controls: dict[str, Any] = {}
        self._parsers: dict[str, Callable[[Any], Any]] = {}
        types = _field_types(config_class)
        style = {"description_width": "initial"}
        for f in dataclasses.fields(config_class):
            kind, value = types.get(f.name, f.type), _default(f)
            choices = typing.get_args(kind) if typing.get_origin(kind) is typing.Literal else ()
            if kind is bool:
                w = W.Checkbox(value=bool(value), description=f.name, indent=False)
                parse = bool
            elif choices:
                w = W.Dropdown(options=list(choices), value=value, description=f.name, style=style)
                parse = _identity
            elif kind is int:
                w = W.IntText(value=int(value or 0), description=f.name, style=style)
                parse = int
            elif kind is float:
                w = W.FloatText(value=float(value or 0.0), description=f.name, style=style)
                parse = float
            elif kind is str:
                w = W.Text(value=str(value or ""), description=f.name, style=style)
                parse = str
            else:  # dicts, lists, optional values: JSON
                w = W.Text(value=json.dumps(value), description=f.name, style=style)
                parse = functools.partial(_json, f.name)
            w.layout.width = "auto"
            self.controls[f.name] = w
            self._parsers[f.name] = parse
        self.box = W.HBox(list(self.controls.values()), layout=W.Layout(flex_flow="row wrap"))

    def values(self) -> dict[str, Any]:
        """The fields as keyword arguments; raises :class:`ParamError` for a bad value."""
        return {k: self._parsers[k](w.value) for k, w in self.controls.items()}

    def key(self) -> str:
        """A hashable, order-stable description of the values (for cache keys)."""
        return json.dumps(self.values(), sort_keys=True, default=str)

    def observe(self, handler: Callable[..., None]) -> None:
        for w in self.controls.values():
            w.observe(handler, names="value")


def _identity(value: Any) -> Any:
    return value


def _json(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ParamError(f"parameter {name!r}: {text!r} is not valid JSON ({e.msg})") from None


def device_options() -> list[str]:
    """``cpu`` plus every visible CUDA device (``cuda``, ``cuda:1``, ...)."""
    options = ["cpu"]
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        options += ["cuda"] + [f"cuda:{i}" for i in range(1, n)]
    return options


class DeviceControl:
    """A dropdown of devices; changing it moves the model and calls ``on_change(device)``."""

    def __init__(self, model: torch.nn.Module, device: str = "auto") -> None:
        import ipywidgets as W

        from workbench.device import resolve_device

        self.model = model
        options = device_options()
        start = str(resolve_device(device))
        start = start if start in options else ("cuda" if start.startswith("cuda") else "cpu")
        self.widget = W.Dropdown(options=options, value=start, description="device")
        self.widget.layout.width = "160px"
        self._callbacks: list[Callable[[torch.device], None]] = []
        self.model.to(self.device)
        self.widget.observe(self._changed, names="value")

    @property
    def device(self) -> torch.device:
        return torch.device(self.widget.value)

    def on_change(self, callback: Callable[[torch.device], None]) -> None:
        self._callbacks.append(callback)

    def _changed(self, _change: dict) -> None:
        self.model.to(self.device)
        for callback in self._callbacks:
            callback(self.device)


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run an app's callback; any exception becomes a message in its ``status`` widget.

    Widget callbacks that raise would print a traceback into the notebook's output log; the
    apps show one line instead (``ExplainError`` messages already say what to do).
    """

    @functools.wraps(method)
    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as e:  # every failure of a callback is the user's to read, not ours
            self.error = e
            text = str(e) if isinstance(e, ValueError | LookupError) else f"{type(e).__name__}: {e}"
            self.status.value = message_html(text)
            return None

    return wrapper


def click_events() -> Any:
    """``ipyevents.Event`` when ipyevents is installed (clicks on images), else None."""
    try:
        from ipyevents import Event
    except ImportError:
        return None
    return Event


@contextlib.contextmanager
def few_threads(n: int = 1):
    """Run small tensor work (one pair, a rank list's maps) on ``n`` intra-op threads.

    Batches of a few images gain little from OpenMP's threads and, on a busy CPU, lose a lot
    waiting for them (measured on a loaded 2-core machine: Grad-CAM of one 256×128 pair 107 ms
    with 2 threads, 23 ms with 1; a query switch with list heat maps 137 ms vs 22 ms). The
    previous setting is restored afterwards.
    """
    before = torch.get_num_threads()
    if before > n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before > n:
            torch.set_num_threads(before)


def interactive(device: torch.device):
    """The thread setting of the apps' per-click work: one CPU thread, or as is on a GPU."""
    return few_threads(1) if device.type == "cpu" else contextlib.nullcontext()
