#!/usr/bin/env bash
# Set up the environment (if needed) and run the main job on the embedded
# defaults: a Dask LocalCluster, outputs under ./runs/.
#   scripts/run-main.sh [CORPUS...]     (default: ../shared/data/gmb_ner_dataset.csv)
source "$(dirname "$0")/bootstrap.sh"
cd "$ROOT"
if [ "$#" -eq 0 ]; then
    set -- "${NERBATCH_DATA:-$ROOT/../shared/data/gmb_ner_dataset.csv}"
fi
exec nerbatch prepare "$@" --out runs/prepared
