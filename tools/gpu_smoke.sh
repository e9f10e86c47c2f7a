#!/usr/bin/env bash
# First run on a new cluster: 2 real training steps of a TINY random Qwen2.5-VL on 1 GPU.
#
#   bash tools/gpu_smoke.sh [WORK_DIR]         # on a GPU node, inside an allocation or not
#   sbatch --gpus-per-node=1 --time=30 tools/gpu_smoke.sh
#
# Proves the environment (verl V1 trainer, TransferQueue, vLLM, torchvision + the Qwen2.5-VL
# processor, Ray, ddai's agent loop and reward plugins, the job script with its preflight,
# save/resume bookkeeping) in minutes, before a week of paid judge calls. Nothing is
# downloaded: the model is built locally with random weights (python -m ddai.phase2.smoke),
# and the judge, generator and search server are the loopback FAKES from tests/fakes (no
# API key is used or needed). Not run in CI (needs a GPU); the model/processor building part
# runs on CPU in tests/phase2/test_phase2_vision.py.
#
# Environment: DDAI_PYTHON (default python3), SMOKE_GPU_MEMORY_UTILIZATION (default 0.3).
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
PY=${DDAI_PYTHON:-python3}
WORK=$(readlink -f "${1:-$(mktemp -d "${TMPDIR:-/tmp}/ddai-gpu-smoke.XXXXXX")}")
mkdir -p "$WORK"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
say() { printf '[gpu-smoke %s] %s\n' "$(date -u +%T)" "$*" >&2; }

say "work dir $WORK"
say "building the tiny model, processor, pages and a 4-row training set"
INPUTS=$("$PY" -m ddai.phase2.smoke inputs "$WORK/inputs")
field() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$INPUTS" "$1"; }
MODEL=$(field model); TRAIN=$(field train_file); IMG=$(field image_root)

say "starting the fake judge, generator and search servers (loopback)"
"$PY" - "$WORK/servers.json" "$IMG" "$INPUTS" "$REPO" <<'PY' &
import json, sys, threading
from pathlib import Path
sys.path.insert(0, str(Path(sys.argv[4]) / "tests" / "fakes"))
from fake_servers import FakeGemini, FakeOpenAI, FakeSearch
out, img, inputs = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
servers = [FakeGemini().start(), FakeOpenAI().start(), FakeSearch(img, inputs["decks"]).start()]
Path(out).write_text(json.dumps({"gemini": servers[0].url, "openai": servers[1].url, "search": servers[2].url}))
threading.Event().wait()
PY
SERVERS_PID=$!
trap 'kill "$SERVERS_PID" 2>/dev/null' EXIT
cd "$REPO"
for _ in $(seq 1 100); do [ -s "$WORK/servers.json" ] && break; sleep 0.2; done
[ -s "$WORK/servers.json" ] || { say "error: the fake servers did not start"; exit 1; }
url() { "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$WORK/servers.json" "$1"; }

export GEMINI_API_KEY=smoke-fake-gemini-key OPENAI_API_KEY=smoke-fake-openai-key
say "rendering the run (the same validation as a real one)"
RUN_DIR=$("$PY" -m ddai.phase2.chain prepare \
    "phase2.model_path=$MODEL" "phase2.train_file=$TRAIN" "phase2.image_root=$IMG" \
    "+phase2.agent.settings.search_url=$(url search)/search" \
    "+phase2.agent.settings.generator.base_url=$(url openai)/v1" \
    "+phase2.agent.settings.crops_dir=$WORK/crops" \
    "+phase2.reward.kwargs.judge_base_url=$(url gemini)" \
    "+phase2.reward.kwargs.cache_path=$WORK/judge_cache.sqlite" \
    "+phase2.reward.kwargs.log_path=$WORK/judge.jsonl" \
    "phase2.run_dir=$WORK/run" "phase2.logger=[console]" \
    phase2.train_batch_size=2 phase2.ppo_mini_batch_size=2 phase2.ppo_micro_batch_size_per_gpu=1 \
    phase2.rollout.n=2 phase2.rollout.log_prob_micro_batch_size_per_gpu=1 \
    "phase2.rollout.gpu_memory_utilization=${SMOKE_GPU_MEMORY_UTILIZATION:-0.3}" \
    phase2.agent.num_workers=1 phase2.reward.num_workers=1 \
    phase2.slurm.nodes=1 phase2.slurm.gpus_per_node=1 phase2.slurm.time_min=60 \
    phase2.slurm.step_minutes=5 phase2.slurm.startup_minutes=15 phase2.save_freq=1)
say "run dir $RUN_DIR; running slurm/phase2.slurm in place (preflight, then 2 steps)"
export DDAI_PHASE2_SCRIPT="$REPO/slurm/phase2.slurm" DDAI_PYTHON="$PY"
rc=0
bash "$REPO/slurm/phase2.slurm" "$RUN_DIR" || rc=$?
tail -n 40 "$RUN_DIR/phase2.log" >&2 || true
latest=$(cat "$RUN_DIR/checkpoints/latest_checkpointed_iteration.txt" 2>/dev/null || echo 0)
if [ "$rc" = 0 ] && [ "$latest" = 2 ] && [ -f "$RUN_DIR/DONE" ]; then
    say "OK: 2 steps trained and checkpointed ($RUN_DIR/checkpoints/global_step_2); judge log $WORK/judge.jsonl"
    exit 0
fi
say "FAILED (exit $rc, latest checkpoint $latest): see $RUN_DIR/phase2.log and $RUN_DIR/preflight-*.txt"
exit 1
