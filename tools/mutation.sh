#!/usr/bin/env bash
# Mutation testing of alertd's pure core: alertd/engine, alertd/notify and the decoders
# alertd/sources/{element,navixy,common}.py, with the focused, in-process test selection
# configured under [tool.mutmut] in pyproject.toml. docs/testing.md gives the runtime, the
# score and why each surviving mutant is equivalent.
#
#   tools/mutation.sh                     # everything: about an hour on 2 shared cores
#   tools/mutation.sh 'alertd.engine.conditions*'   # one module
#
# Results are kept in mutants/ (git-ignored): a second run checks only mutants of changed
# functions; delete mutants/ to start again. Needs the `mutation` extra: pip install -e '.[test,mutation]'. Prints the survivors at the
# end; `python -m mutmut show NAME` shows one mutant's diff. The exit status is 0 when no mutant
# survived that docs/testing.md does not list, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_CHILDREN="${MAX_CHILDREN:-2}"
python3 -m mutmut run --max-children "$MAX_CHILDREN" "$@" || true
python3 -m mutmut results > mutants/results.txt || true
python3 tools/mutation_score.py docs/testing.md
