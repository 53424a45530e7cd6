"""How many examples a hypothesis property tries: the number written at the test, or a fifth
of it (at least 10) inside a mutation run (mutmut sets ``MUTANT_UNDER_TEST`` in each
mutant's process), where every property runs once per mutant that reaches it and the full
count made a run of alerts.py alone take hours. A fifth still finds the mutants the
properties kill (docs/testing.md); the ordinary suite always runs the full count."""

from __future__ import annotations

import os

from hypothesis import settings

MUTATION_RUN = bool(os.environ.get("MUTANT_UNDER_TEST"))


def examples(count: int) -> int:
    return max(10, count // 5) if MUTATION_RUN else count


settings.register_profile("mutation", max_examples=20)
if MUTATION_RUN:
    settings.load_profile("mutation")
