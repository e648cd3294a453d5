"""LiveKit plugins by name: ``livekit_platform_sdk.plugins.openai`` is ``livekit.plugins.openai``.

When a plugin is not installed its name is a falsy placeholder whose use raises ``PluginNotInstalledError``
naming the extra to install, so ``from livekit_platform_sdk.plugins import openai, silero`` always imports.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, NoReturn

from .catalog import BY_MODULE, PLUGINS, PluginInfo

__all__ = ["PLUGINS", "MissingPlugin", "PluginInfo", "PluginNotInstalledError", "load"]


class PluginNotInstalledError(ImportError):
    """A plugin was used that is not installed; the message says which extra installs it."""


class MissingPlugin:
    """Stands for a plugin that is not installed: falsy, and any use raises ``PluginNotInstalledError``."""

    def __init__(self, module: str) -> None:
        self._module = module

    @property
    def install_hint(self) -> str:
        info = BY_MODULE.get(self._module)
        if info is None:
            return f"pip install livekit-plugins-{self._module.replace('_', '-')}"
        return f'pip install "livekit-platform-sdk[{info.extra}]"'

    def _raise(self) -> NoReturn:
        raise PluginNotInstalledError(
            f"the LiveKit plugin livekit.plugins.{self._module} is not installed: run `{self.install_hint}` "
            "(or add the extra to your project's dependencies)",
            name=f"livekit.plugins.{self._module}",
        )

    def __bool__(self) -> bool:
        return False

    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # keep copy/pickle/introspection protocols working
        self._raise()

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._raise()

    def __repr__(self) -> str:
        return f"<missing LiveKit plugin {self._module!r}: {self.install_hint}>"


def load(module: str) -> ModuleType | MissingPlugin:
    """The plugin module ``livekit.plugins.<module>``, or a ``MissingPlugin`` when it is not installed."""
    full_name = f"livekit.plugins.{module}"
    try:
        return importlib.import_module(full_name)
    except ModuleNotFoundError as exc:
        # only the plugin itself being absent means "not installed"; a plugin whose own dependency is
        # missing is a broken install and must surface as is
        if exc.name not in (full_name, "livekit.plugins", "livekit"):
            raise
        return MissingPlugin(module)


def __getattr__(name: str) -> ModuleType | MissingPlugin:
    if name.startswith("_") or not name.isidentifier():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    plugin = load(name)
    if isinstance(plugin, ModuleType):
        globals()[name] = plugin  # cache: later lookups bypass __getattr__
    return plugin
