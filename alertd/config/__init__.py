"""Configuration: the rule file, parsed once into frozen typed objects (``schema``).

Place in the data flow: read at start and on SIGHUP; every other part of alertd reads the
resulting ``Config`` and never the YAML. ``nodes`` keeps FILE:LINE for every value, ``fields``
reads typed values, ``sections``/``conditions``/``rules`` parse the parts, ``load`` ties them
together and reports all problems at once.

``load_config`` is imported on first use: the engine and the planner import ``schema`` (this
package) and must not pull in the YAML loader or apprise with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from alertd.config.schema import Config

if TYPE_CHECKING:
    from alertd.config.load import load_config

__all__ = ["Config", "load_config"]


def __getattr__(name: str) -> Any:
    if name == "load_config":
        from alertd.config.load import load_config

        return load_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
