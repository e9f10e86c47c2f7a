#!/usr/bin/env bash
# The test command of the README: installs what the tests need (Python extras, the
# training stack on CPU, a local single-node Slurm cluster) and runs the whole suite.
# Idempotent: on a machine where everything is already there it only runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

export PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3}

echo "== installing ddai with all extras" >&2
# torch is not a dependency of verl's base install; pin the CPU build first so nothing
# drags in a multi-GB CUDA build (the machine image ships this wheel locally).
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q "torch==2.13.0"
fi
"$PY" -m pip install -q -e ".[slurm,clients,report,wandb,train,test]"

echo "== installing headless Chromium for the report's browser test" >&2
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get install -y -q chromium chromium-driver >/dev/null || { apt-get update -q && apt-get install -y -q chromium chromium-driver >/dev/null; }
fi

echo "== starting the local Slurm cluster" >&2
bash tools/slurm_cluster.sh up

# Slurm/verl tests fail (never skip) when their services are missing.
export CI=${CI:-1}

echo "== running the tests" >&2
exec "$PY" -m pytest "$@"
