# shellcheck shell=bash
# Ray on a multi-node Slurm allocation, sourced by slurm/phase2.slurm.
#
# Head on the first node, one worker per other node, all started with srun inside this job.
# verl's example script builds its node list as nodes_array=("$nodes") -- one quoted word, so
# only ONE node ever gets a worker; here every hostname is its own array element (mapfile).
#
# Provides: ddai_node_list (prints one host per line), ddai_ray_up (exports RAY_ADDRESS,
# DDAI_HEAD_NODE), ddai_ray_down.  Settings: DDAI_RAY_PORT (default: 20000 + job id % 20000,
# so two jobs on one node never share a port), DDAI_RAY_TMPDIR (this job's temp dir),
# RAY_NETWORK_INTERFACE (e.g. ib0: take the head's IPv4 address from that interface),
# DDAI_RAY_WAIT_S (120). The readiness probe joins RAY_ADDRESS explicitly, never "auto"
# (which would pick whatever cluster is recorded in the node's default Ray temp dir).

ddai_node_list() {
    scontrol show hostnames "${SLURM_JOB_NODELIST:?not inside a Slurm allocation}"
}

ddai_head_ip() {
    local head=$1
    if [ -n "${RAY_NETWORK_INTERFACE:-}" ]; then
        srun --overlap --nodes=1 --ntasks=1 -w "$head" \
            ip -4 -o addr show "$RAY_NETWORK_INTERFACE" | awk '{print $4}' | cut -d/ -f1 | head -n1
    else
        srun --overlap --nodes=1 --ntasks=1 -w "$head" hostname --ip-address | awk '{print $1}'
    fi
}

ddai_ray_up() {
    local job=${SLURM_JOB_ID:-0}
    local py=${DDAI_PYTHON:-python3} port=${DDAI_RAY_PORT:-$((20000 + job % 20000))} wait_s=${DDAI_RAY_WAIT_S:-120}
    local tmp=${DDAI_RAY_TMPDIR:-/tmp/ddai-ray-$job}
    local -a nodes
    mapfile -t nodes < <(ddai_node_list)
    [ "${#nodes[@]}" -ge 1 ] || { echo "ddai: error: empty node list" >&2; return 1; }
    DDAI_HEAD_NODE=${nodes[0]}
    local ip
    ip=$(ddai_head_ip "$DDAI_HEAD_NODE")
    [ -n "$ip" ] || { echo "ddai: error: no IP address for head node $DDAI_HEAD_NODE" >&2; return 1; }
    export DDAI_HEAD_NODE RAY_ADDRESS="$ip:$port"
    local cpus=${SLURM_CPUS_PER_TASK:-1} gpus=${SLURM_GPUS_PER_NODE:-0}
    gpus=${gpus##*:}   # "gpu:4" -> 4
    echo "ray head on $DDAI_HEAD_NODE ($RAY_ADDRESS), ${#nodes[@]} node(s)"
    srun --overlap --nodes=1 --ntasks=1 -w "$DDAI_HEAD_NODE" \
        "$py" -m ray.scripts.scripts start --head --node-ip-address="$ip" --port="$port" \
        --temp-dir="$tmp" --num-cpus="$cpus" --num-gpus="$gpus" --block &
    DDAI_RAY_PIDS=($!)
    local i
    for ((i = 1; i < ${#nodes[@]}; i++)); do
        srun --overlap --nodes=1 --ntasks=1 -w "${nodes[$i]}" \
            "$py" -m ray.scripts.scripts start --address="$RAY_ADDRESS" \
            --num-cpus="$cpus" --num-gpus="$gpus" --block &
        DDAI_RAY_PIDS+=($!)
    done
    # Wait until every node has joined (not a fixed sleep: slow nodes would be missed).
    local deadline=$((SECONDS + wait_s)) joined=0
    while [ $SECONDS -lt $deadline ]; do
        joined=$("$py" - <<'PY' 2>/dev/null
import os, ray
ray.init(address=os.environ["RAY_ADDRESS"], logging_level="ERROR")
print(sum(1 for n in ray.nodes() if n.get("Alive")))
PY
)
        [ "${joined:-0}" -ge "${#nodes[@]}" ] && return 0
        sleep 5
    done
    echo "ddai: error: only ${joined:-0} of ${#nodes[@]} Ray nodes joined within ${wait_s}s" >&2
    return 1
}

ddai_ray_down() {
    local pid
    for pid in "${DDAI_RAY_PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null
    done
    return 0
}
