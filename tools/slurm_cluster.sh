#!/usr/bin/env bash
# A real single-node Slurm (Debian slurm-wlm 22.05 + munge) on THIS machine, for development
# and CI: the job suite and the sweep tests run against it instead of mocks.
#
#   tools/slurm_cluster.sh up       install (first time), configure, start; idempotent
#   tools/slurm_cluster.sh down     stop slurmd, slurmctld, munged (state and logs are kept)
#   tools/slurm_cluster.sh status   sinfo + the GPUs/CPUs the node offers
#
# Needs root. What it does to the machine (dev/CI boxes only -- never a real cluster):
#   * apt-get installs slurm-wlm and munge (skipped when already installed)
#   * writes /etc/slurm/slurm.conf and /etc/slurm/gres.conf from tools/slurm/*.in
#   * creates 4 fake GPUs /dev/fakegpu0..3 (character devices aliasing /dev/null)
#   * installs tools/slurm/sacct as /usr/local/bin/sacct: without slurmdbd the real sacct
#     answers "accounting storage is disabled"; the shim answers from squeue and the job
#     completion file so that submitit can follow its jobs. It shadows /usr/bin/sacct only
#     because /usr/local/bin comes first in PATH.
#   * starts munged, slurmctld and slurmd directly (no systemd needed)
#
# Settings (environment):
#   DDAI_SLURM_CPUS    CPUs the node declares (default: max(8, nproc)). More than the machine
#                      has is deliberate: sweep jobs are mostly waiting, and the job-chain tests
#                      need several jobs at once on a 2-core CI box (SlurmdParameters=config_overrides).
#   DDAI_SLURM_MEM_MB  RealMemory (default: 90% of MemTotal).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TEMPLATES="$HERE/slurm"
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
JOBCOMP="$LOG_DIR/jobcomp.txt"
SHIM=/usr/local/bin/sacct
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid

say() { printf 'slurm_cluster: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts daemons)"; }

# pid from a pid file if that process is alive and is the named program
live_pid() {
    local file=$1 prog=$2 pid
    [ -r "$file" ] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$prog" ] || return 1
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null || return 1   # zombie = gone
    echo "$pid"
}

install_packages() {
    local missing=()
    for bin in slurmctld slurmd munged sinfo; do
        command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$bin")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    say "installing slurm-wlm and munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' postinst from trying to start services through an init system
    # that may not exist here; we start the daemons ourselves below.
    local policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
    if [ $policy_added -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

render_config() {
    local node cpus mem_kb mem_mb
    node=$(hostname -s)
    cpus=${DDAI_SLURM_CPUS:-$(( $(nproc) > 8 ? $(nproc) : 8 ))}
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    mem_mb=${DDAI_SLURM_MEM_MB:-$(( mem_kb * 9 / 10 / 1024 ))}
    mkdir -p "$CONF_DIR"
    local changed=1
    local tmp
    for name in slurm.conf gres.conf; do
        tmp=$(mktemp)
        sed -e "s/@NODE@/$node/g" -e "s/@CPUS@/$cpus/g" -e "s/@MEM_MB@/$mem_mb/g" \
            "$TEMPLATES/$name.in" >"$tmp"
        if [ -f "$CONF_DIR/$name" ] && cmp -s "$tmp" "$CONF_DIR/$name"; then
            rm -f "$tmp"
        else
            install -m 644 "$tmp" "$CONF_DIR/$name"
            rm -f "$tmp"
            changed=0
        fi
    done
    return $changed   # 0 = something changed
}

make_fake_gpus() {
    local i dev
    for i in 0 1 2 3; do
        dev=/dev/fakegpu$i
        if [ ! -c "$dev" ]; then
            rm -f "$dev"
            mknod -m 666 "$dev" c 1 3 || die "cannot create character device $dev (mknod needs CAP_MKNOD)"
        fi
    done
}

install_shim() {
    local py
    py=$(command -v /usr/bin/python3 || command -v python3) || die "python3 is needed for the sacct shim"
    local tmp
    tmp=$(mktemp)
    sed -e "1s|.*|#!$py|" "$TEMPLATES/sacct" >"$tmp"
    if ! cmp -s "$tmp" "$SHIM" 2>/dev/null; then
        install -m 755 "$tmp" "$SHIM"
    fi
    rm -f "$tmp"
}

munge_works() { munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    # already running (ours, or one started by the init system): keep it
    if live_pid "$MUNGE_PID" munged >/dev/null || munge_works; then return 0; fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating munge key"
        if command -v mungekey >/dev/null 2>&1; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    runuser -u munge -- /usr/sbin/munged --force
    local i
    for i in $(seq 50); do
        munge_works && return 0
        sleep 0.1
    done
    die "munged did not start (see /var/log/munge/munged.log)"
}

start_slurm() {
    local restart=$1
    mkdir -p /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR"
    touch "$JOBCOMP"
    if [ "$restart" = 1 ]; then
        stop_pid "$SLURMD_PID" slurmd
        stop_pid "$CTLD_PID" slurmctld
    fi
    if ! live_pid "$CTLD_PID" slurmctld >/dev/null; then
        # -i: start even if saved state cannot be read (e.g. after a config change)
        /usr/sbin/slurmctld -i
    fi
    if ! live_pid "$SLURMD_PID" slurmd >/dev/null; then
        /usr/sbin/slurmd
    fi
}

stop_pid() {
    local file=$1 prog=$2 pid i
    pid=$(live_pid "$file" "$prog") || return 0
    kill "$pid" 2>/dev/null || true
    for i in $(seq 100); do
        live_pid "$file" "$prog" >/dev/null || return 0
        sleep 0.1
    done
    say "$prog ($pid) did not stop in 10 s; killing it"
    kill -9 "$pid" 2>/dev/null || true
}

wait_ready() {
    local node state i
    node=$(hostname -s)
    for i in $(seq 150); do
        state=$(sinfo -h -n "$node" -o '%T' 2>/dev/null | head -n1 || true)
        case "$state" in
            idle|mixed|allocated|completing) return 0 ;;
            down*|drain*|drained*)
                scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.2
    done
    sinfo -R >&2 || true
    die "node $node not ready after 30 s (state: ${state:-no answer}); see $LOG_DIR/slurmctld.log and slurmd.log"
}

cmd_up() {
    need_root
    install_packages
    make_fake_gpus
    install_shim
    local restart=0
    if render_config; then restart=1; say "configuration written to $CONF_DIR"; fi
    # A daemon that is up but does not answer (stale pid file reused, wedged) is restarted.
    if [ $restart = 0 ] && live_pid "$CTLD_PID" slurmctld >/dev/null && ! scontrol ping >/dev/null 2>&1; then
        restart=1
    fi
    start_munge
    start_slurm $restart
    wait_ready
    say "up: $(sinfo -h -o '%P %D %T cpus=%c mem=%mMB gres=%G')"
}

cmd_down() {
    need_root
    stop_pid "$SLURMD_PID" slurmd
    stop_pid "$CTLD_PID" slurmctld
    stop_pid "$MUNGE_PID" munged
    say "down"
}

cmd_status() {
    if ! command -v sinfo >/dev/null 2>&1; then
        say "Slurm is not installed (run: $0 up)"; exit 1
    fi
    sinfo -o '%P %a %D %T %c %m %G %N'
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
