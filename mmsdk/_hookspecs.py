"""The hooks a plugin implements. Each takes a ``register`` callback.

A plugin module (named by an entry point in the ``mmsdk`` group) defines
functions decorated with :data:`hookimpl`::

    from mmsdk.plugin import ProviderSpec, hookimpl

    @hookimpl
    def register_providers(register):
        register(ProviderSpec(name="acme", model_class=AcmeModel, ...))

    @hookimpl
    def register_aliases(register):
        register("acme-fast", "acme:turbo-1")

An installed plugin also declares each alias in its distribution's metadata,
so that mmsdk knows who owns it without importing any plugin::

    [project.entry-points."mmsdk.aliases"]
    "acme-fast" = "mmsdk_acme"

The guide is ``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from ._registry import ProviderSpec

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("mmsdk")
hookimpl = pluggy.HookimplMarker("mmsdk")


@hookspec
def register_providers(register: Callable[[ProviderSpec], None]) -> None:
    """Register providers: call ``register(ProviderSpec(...))`` once per provider.

    Registration must be cheap: import no SDK, torch or model here. Put heavy
    imports inside the spec's ``factory``.
    """


@hookspec
def register_aliases(register: Callable[[str, str], None]) -> None:
    """Register provider-string aliases: ``register("local:sdxl", "diffusers:ORG/NAME")``.

    An installed plugin must also declare each alias in the ``mmsdk.aliases``
    entry-point group (name: the alias, value: this plugin's module); one it
    does not declare is refused, naming that fix. ``local:`` aliases belong to
    mmsdk's built-in plugins.
    """
