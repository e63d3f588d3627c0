"""The set-up script the README tells operators to source."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO


def _shell_state(prelude: str) -> list[str]:
    """Shell options (``set +o``) and the exit-on-error flag after running ``prelude``."""
    script = f"{prelude}\nset +o\necho \"flags=$-\"\n"
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_sourcing_bootstrap_leaves_the_callers_shell_options_alone():
    before = _shell_state("set +euo pipefail")
    after = _shell_state("set +euo pipefail\nsource scripts/bootstrap.sh")
    assert after == before
    assert not any(line in after for line in ("set -o errexit", "set -o nounset", "set -o pipefail"))


def test_sourcing_bootstrap_puts_the_environment_first_on_path():
    result = subprocess.run(["bash", "-c", "source scripts/bootstrap.sh && command -v nerbatch"], capture_output=True,
                            text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("/bin/nerbatch")
