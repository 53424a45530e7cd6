"""The score of a mutmut run and the surviving mutants that docs/testing.md does not explain.

    python3 tools/mutation_score.py [docs/testing.md]

Reads ``python -m mutmut results --all true`` (run from the repository root, after
``tools/mutation.sh``). The score is killed / (killed + survived + no tests): a mutant that no
selected test even reaches counts against it, like one that survives. A timeout (a mutant that
loops for ever) counts as killed. Survivors are then matched against the list in the doc:
lines of the form ``- `PATTERN`: reason`` under the heading "Equivalent mutants", where
PATTERN is an fnmatch pattern of mutant names (``alertd.engine.conditions.x__missing__mutmut_5``).
Exit status 0 when every survivor is listed, 1 otherwise (the unlisted ones are printed).
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

KILLED = {"killed", "timeout"}
AGAINST = {"survived", "no tests"}


def results() -> dict[str, str]:
    done = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                          capture_output=True, text=True, check=True)
    found = {}
    for line in done.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and name.startswith("alertd."):
            found[name] = status
    return found


def explained(doc: Path) -> list[tuple[str, str]]:
    text = doc.read_text()
    section = text.split("## Equivalent mutants", 1)[-1].split("\n## ", 1)[0]
    return re.findall(r"^- `([^`]+)`: (.+)$", section, re.MULTILINE)


def main(argv: list[str]) -> int:
    doc = Path(argv[1] if len(argv) > 1 else "docs/testing.md")
    found = results()
    counts = Counter(found.values())
    killed = sum(counts[s] for s in KILLED)
    against = sum(counts[s] for s in AGAINST)
    print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())))
    if killed + against:
        print(f"score: {killed}/{killed + against} = {100 * killed / (killed + against):.1f}%")
    patterns = explained(doc) if doc.exists() else []
    unexplained = [name for name, status in sorted(found.items()) if status in AGAINST
                   and not any(fnmatch.fnmatchcase(name, p) for p, _ in patterns)]
    print(f"{len(unexplained)} surviving mutants not listed in {doc} as equivalent")
    for name in unexplained:
        print(f"  {name} ({found[name]})")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
