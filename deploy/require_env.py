"""Run by `prefect deploy` (a build step of deploy/prefect.yaml) on the deploying
machine: may this deployment's schedule be active?

    python3 deploy/require_env.py DEPLOYMENT VARIABLE...

Prints ``true`` when every VARIABLE is set and not empty (a variable named
``..._TEMPLATE`` must also hold ``{date}``), else ``false`` and one line on stderr
saying what to set. The schedule's ``active`` is that output, so a deployment
made without its paths is created with its schedule paused instead of failing
every night. Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import os
import sys


def problems(variables: list[str]) -> list[str]:
    """What is wrong with each variable, in order; empty when all are usable."""
    found = []
    for name in variables:
        value = os.environ.get(name, "").strip()
        if not value:
            found.append(f"{name} is not set")
        elif name.endswith("_TEMPLATE") and "{date}" not in value:
            found.append(f"{name} has no {{date}} ({value})")
    return found


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: require_env.py DEPLOYMENT VARIABLE...", file=sys.stderr)
        return 2
    deployment, variables = argv[0], argv[1:]
    wrong = problems(variables)
    if wrong:
        print(f"{deployment}: deployed with its schedule PAUSED because {'; '.join(wrong)}: export "
              f"{', '.join(variables)} (README, 'Running it with Prefect', step 2) and run `prefect deploy` again",
              file=sys.stderr)
    print("false" if wrong else "true")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
