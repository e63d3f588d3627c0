# Sourced by the other scripts (and by operators: `source scripts/bootstrap.sh`):
# creates .venv on first use (or when the dependency files change) and puts it
# first on PATH. Safe to run repeatedly. It leaves the caller's shell options
# alone: the install runs in a subshell with its own `set -euo pipefail`, so an
# interactive shell that sources this is never switched to exit-on-error.
_nerbatch_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_nerbatch_install() (
    set -euo pipefail
    root="$1" venv="$2" python="${PYTHON:-python3}"
    stamp="$venv/.nerbatch-deps"
    want="$(cat "$root/pyproject.toml" "$root/constraints.txt" | sha256sum | cut -c1-16)"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "nerbatch: installing into $venv (first run takes a few minutes)" >&2
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --upgrade pip
        "$venv/bin/python" -m pip install -q -c "$root/constraints.txt" -e "$root[dev,bench,vectors]"
        echo "$want" > "$stamp"
    fi
)
ROOT="$_nerbatch_root"
VENV="${NERBATCH_VENV:-$ROOT/.venv}"
unset _nerbatch_root
if ! _nerbatch_install "$ROOT" "$VENV"; then
    echo "nerbatch: setting up $VENV failed" >&2
    unset -f _nerbatch_install
    return 1 2>/dev/null || exit 1
fi
unset -f _nerbatch_install
export PATH="$VENV/bin:$PATH"
# Quiet, offline-friendly defaults for TensorFlow and Prefect; callers may override.
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"  # 2 still shows oneDNN notes at run time
export PREFECT_SERVER_ANALYTICS_ENABLED="${PREFECT_SERVER_ANALYTICS_ENABLED:-false}"
# The temporary server of a run without PREFECT_API_URL migrates a fresh database first:
# on a cold machine that took over Prefect's default 20 s, and the main command died.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-120}"
