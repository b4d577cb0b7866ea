#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, brings the servers up, type-checks,
# then runs unit and integration tests against the real servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-system.sh
bash scripts/ensure-node.sh
echo "== type-check"
npx tsc --noEmit -p tsconfig.json
echo "== import cycles"
npx madge --circular --extensions ts --ts-config tsconfig.json schemas config util connectors pipeline sinks cli >/dev/null 2>&1 || {
  npx madge --circular --extensions ts --ts-config tsconfig.json schemas config util connectors pipeline sinks cli
  exit 1
}
echo "== servers"
infra/up
echo "== tests"
exec npx vitest run "$@"
