#!/usr/bin/env bash
# Set up the environment (if needed) and run the main job on the embedded
# defaults: the ner-pipeline flow (prepare -> train -> evaluate -> tag) on a
# Dask LocalCluster and Prefect's local server, outputs under ./runs/pipeline.
#   scripts/run-main.sh [CORPUS...] [--epochs N] [--preset default|seed|tiny]
#   (default corpus: ../shared/data/gmb_ner_dataset.csv)
set -euo pipefail
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
export PREFECT_HOME="${PREFECT_HOME:-$ROOT/runs/prefect-home}"
mkdir -p "$PREFECT_HOME"  # Prefect creates only the last path component itself
if [ "$#" -eq 0 ] || [[ "$1" == --* ]]; then
    set -- "${NERBATCH_DATA:-$ROOT/../shared/data/gmb_ner_dataset.csv}" "$@"
fi
exec python -m flows.pipeline "$@"
