#!/usr/bin/env bash
# The main job (README): installs what is missing, brings the servers up, replicates a sample
# workload end to end and prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system.sh
bash scripts/ensure-node.sh
infra/up
exec npx tsx scripts/demo.ts "$@"
