#!/usr/bin/env bash
# Stops what start_cluster.sh started, by the PIDs it recorded in
# $COHORT_SLURM_STATE/pids (default /tmp/cohort_slurm): first the jobs still queued
# or running on this test cluster, then slurmd, slurmctld (with its slurmscriptd) and
# munged; then the slurm.conf start_cluster.sh wrote. Daemons this script did not start
# are left alone. Idempotent.
set -uo pipefail

STATE=${COHORT_SLURM_STATE:-/tmp/cohort_slurm}
say() { echo "stop_cluster: $*"; }

remove_conf() {
    # Our slurm.conf goes too: with it and no slurmctld, every SLURM client call (and the
    # slurm executor plugin's `scontrol show config` at each snakemake start) waits ~10 s.
    if grep -qxF "# written by cohort_connectome tests/slurm/start_cluster.sh" \
            /etc/slurm/slurm.conf 2>/dev/null; then
        rm -f /etc/slurm/slurm.conf
    fi
}
if [ ! -s "$STATE/pids" ]; then
    remove_conf
    say "nothing recorded in $STATE/pids: nothing to stop"
    exit 0
fi

alive() {  # alive NAME PID: PID still runs the program NAME
    [ -n "${2:-}" ] && [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]
}
pid_of() { awk -v n="$1" '$1 == n {print $2}' "$STATE/pids" | tail -1; }
children_of() {  # PIDs whose parent is $1
    local stat
    for stat in /proc/[0-9]*/stat; do
        awk -v p="$1" '{sub(/^.*\) /, ""); if ($2 == p) {split(FILENAME, f, "/"); print f[3]}}' \
            "$stat" 2>/dev/null
    done
}
stop() {  # stop NAME PID: TERM, then KILL after 15 s
    local name=$1 pid=$2
    alive "$name" "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 150); do
        alive "$name" "$pid" || { say "$name (pid $pid) stopped"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    say "$name (pid $pid) killed"
}

ctld=$(pid_of slurmctld)
if alive slurmctld "$ctld"; then
    # jobs left by an interrupted test would keep slurmstepd processes running
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        say "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null
        for _ in $(seq 1 30); do
            [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

slurmd_pid=$(pid_of slurmd)
stop slurmd "$slurmd_pid"
scriptd=""
if alive slurmctld "$ctld"; then
    scriptd=$(for c in $(children_of "$ctld"); do alive slurmscriptd "$c" && echo "$c"; done)
fi
stop slurmctld "$ctld"
for pid in $scriptd; do stop slurmscriptd "$pid"; done
stop munged "$(pid_of munged)"

left=""
for name in slurmd slurmctld munged; do
    pid=$(pid_of "$name")
    alive "$name" "$pid" && left="$left $name($pid)"
done
for pid in $scriptd; do alive slurmscriptd "$pid" && left="$left slurmscriptd($pid)"; done
if [ -n "$left" ]; then
    say "still running:$left"
    exit 1
fi
: >"$STATE/pids"
rm -f /run/slurm/slurmctld.pid /run/slurm/slurmd.pid
remove_conf
say "done"
