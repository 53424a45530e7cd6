"""Configuration: the rule file, parsed once into frozen typed objects (``schema``).

Place in the data flow: read at start and on SIGHUP; every other part of alertd reads the
resulting ``Config`` and never the YAML. ``nodes`` keeps FILE:LINE for every value, ``fields``
reads typed values, ``sections``/``conditions``/``rules`` parse the parts, ``load`` ties them
together and reports all problems at once.
"""

from __future__ import annotations

from alertd.config.load import load_config
from alertd.config.schema import Config

__all__ = ["Config", "load_config"]
