#!/usr/bin/env bash
# A real single-node SLURM on this machine, for `make test-slurm`: installs the Debian
# packages slurm-wlm and munge when missing, writes a minimal slurm.conf (one node on
# 127.0.0.1, no accounting database), starts munged, slurmctld and slurmd, and waits
# until sinfo shows the node idle. The PIDs of the daemons it started are recorded in
# $COHORT_SLURM_STATE/pids (default /tmp/cohort_slurm) for stop_cluster.sh.
#
# Idempotent: daemons already running are left as they are (and not recorded again).
# Needs root (apt-get, daemons as the munge and slurm users). Debian 12, SLURM 22.05.
set -euo pipefail

STATE=${COHORT_SLURM_STATE:-/tmp/cohort_slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by cohort_connectome tests/slurm/start_cluster.sh"
NODE=$(hostname -s)
start=$(date +%s.%N)

say() { echo "start_cluster: $*"; }
die() { echo "start_cluster: error: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (installs packages, starts daemons)"
mkdir -p "$STATE"
touch "$STATE/pids"

# --- packages ---------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    say "installing slurm-wlm and munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >"$STATE/apt.log" 2>&1 \
        || { apt-get update -q >>"$STATE/apt.log" 2>&1 \
             && apt-get install -y -q slurm-wlm munge >>"$STATE/apt.log" 2>&1; } \
        || die "apt-get install slurm-wlm munge failed (see $STATE/apt.log)"
fi
[ -s /etc/munge/munge.key ] || {
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
}

# --- helpers: a recorded daemon is alive when its PID runs the same program --
alive() {  # alive NAME PID
    [ -n "${2:-}" ] && [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]
}
recorded() {  # recorded NAME -> its PID from $STATE/pids, if alive
    local pid
    pid=$(awk -v n="$1" '$1 == n {print $2}' "$STATE/pids" | tail -1)
    if alive "$1" "$pid"; then echo "$pid"; fi
}
record() {  # record NAME PID
    awk -v n="$1" '$1 != n' "$STATE/pids" >"$STATE/pids.new" || true
    echo "$1 $2" >>"$STATE/pids.new"
    mv "$STATE/pids.new" "$STATE/pids"
}
wait_pidfile() {  # wait_pidfile NAME FILE -> PID once the daemon runs
    local pid
    for _ in $(seq 1 100); do
        pid=$(cat "$2" 2>/dev/null || true)
        if alive "$1" "$pid"; then echo "$pid"; return 0; fi
        sleep 0.1
    done
    return 1
}

# --- munge ------------------------------------------------------------------
# no systemd here: /run/munge is not created for us
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if [ -z "$(recorded munged)" ] && ! pgrep -x munged >/dev/null; then
    rm -f /run/munge/munged.pid
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged
    pid=$(wait_pidfile munged /run/munge/munged.pid) || die "munged did not start (see /var/log/munge/munged.log)"
    record munged "$pid"
    say "munged started (pid $pid)"
else
    say "munged already running"
fi
munge -n | unmunge >/dev/null || die "munge -n | unmunge failed"

# --- slurm.conf -------------------------------------------------------------
if [ -e "$CONF" ] && ! grep -qxF "$MARK" "$CONF"; then
    die "$CONF exists and was not written by this script: not overwriting a real cluster's configuration"
fi
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
mkdir -p /etc/slurm
cat >"$CONF.new" <<EOF
$MARK
# One node on 127.0.0.1, no accounting database (squeue for status, no sacct).
ClusterName=cohortci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job without --mem gets this per CPU instead of the whole node
DefMemPerCPU=1000
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# memory is enforced (a job over its --mem is killed) by polling every second
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherParams=OverMemoryKill
JobAcctGatherFrequency=task=1
# finished jobs stay visible to squeue for 10 minutes (the status command)
MinJobAge=600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
if cmp -s "$CONF.new" "$CONF"; then rm "$CONF.new"; else mv "$CONF.new" "$CONF"; fi

mkdir -p /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
chown slurm:slurm /var/spool/slurmctld /var/log/slurm /run/slurm

# --- slurmctld, slurmd ------------------------------------------------------
if [ -z "$(recorded slurmctld)" ] && ! pgrep -x slurmctld >/dev/null; then
    rm -f /run/slurm/slurmctld.pid
    /usr/sbin/slurmctld -c   # -c: no jobs left over from an earlier cluster
    pid=$(wait_pidfile slurmctld /run/slurm/slurmctld.pid) || die "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
    record slurmctld "$pid"
    say "slurmctld started (pid $pid)"
else
    say "slurmctld already running"
fi
if [ -z "$(recorded slurmd)" ] && ! pgrep -x slurmd >/dev/null; then
    rm -f /run/slurm/slurmd.pid
    /usr/sbin/slurmd
    pid=$(wait_pidfile slurmd /run/slurm/slurmd.pid) || die "slurmd did not start (see /var/log/slurm/slurmd.log)"
    record slurmd "$pid"
    say "slurmd started (pid $pid)"
else
    say "slurmd already running"
fi

# --- wait for the node ------------------------------------------------------
state=""
for _ in $(seq 1 120); do
    state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1 || true)
    case "$state" in idle|mixed|allocated) break ;; esac
    sleep 0.5
done
case "$state" in
    idle|mixed|allocated) ;;
    *) die "node $NODE is '${state:-not listed}' after 60 s (see /var/log/slurm/)" ;;
esac
elapsed=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
say "node $NODE $state, $cpus CPUs, ${mem_mb} MB; up in $elapsed s"
