#!/usr/bin/env bash
# `make test-slurm`: the demo on a real single-node SLURM (tests/slurm/start_cluster.sh)
# through --profile profiles/slurm, against the same demo run locally.
#
#   1. start the cluster (twice: the second start must change nothing)
#   2. the demo locally (--cores 2) and under SLURM, each in its own directory
#      (--directory): every file under results/, work/ and resources/ must be
#      byte-identical
#   3. failure: sub-03's job is submitted with --mem 100 (tests/slurm/fault/sbatch,
#      first on PATH) and SLURM kills it for exceeding its memory:
#      a. --retries 0: the workflow exits 1, the log shows SLURM's reason and names
#         sub-03 alone, and every other subject finishes (keep-going)
#      b. rerun with --retries 1, sub-03's first attempt killed again: the retry asks
#         for twice the memory and completes; results identical to the local run
#   4. stop the cluster (also on failure), check no daemon is left
#
# Needs root. Runs a snapshot of the repository (src/) and writes under $COHORT_SLURM_OUT (default: a new /tmp/cohort_slurm_test.*);
# COHORT_SLURM_KEEP=1 leaves the cluster running at the end.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$REPO/tests/slurm
BIN=${BIN:-$REPO/.venv/bin}
case "$BIN" in /*) ;; *) BIN=$REPO/$BIN ;; esac
OUT=${COHORT_SLURM_OUT:-$(mktemp -d /tmp/cohort_slurm_test.XXXXXX)}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
# SLURM status every few seconds instead of the profile's 40 s
FAST=(--slurm-init-seconds-before-status-checks 2)

say() { echo "run_demo: $*"; }
note() { echo "$*" | tee -a "$SUMMARY"; }
fail() { echo "run_demo: FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
smk() { (cd "$SRC" && "$BIN/snakemake" "$@"); }

stop_cluster() {
    if [ "${COHORT_SLURM_KEEP:-0}" = 1 ]; then
        say "COHORT_SLURM_KEEP=1: cluster left running (tests/slurm/stop_cluster.sh stops it)"
        return 0
    fi
    "$HERE/stop_cluster.sh"
}
trap stop_cluster EXIT

compare() {  # compare DIR_A DIR_B: byte-identical results/, work/, resources/
    local folder n
    for folder in results work resources; do
        [ -d "$1/$folder" ] || fail "$1/$folder missing"
        diff -r -q "$1/$folder" "$2/$folder" >"$OUT/diff.txt" \
            || fail "$2/$folder differs from $1/$folder: $(head -5 "$OUT/diff.txt")"
    done
    n=$(find "$1/results" -type f | wc -l)
    note "  identical: $n files under results/ ($(find "$1/work" "$1/resources" -type f | wc -l) more under work/, resources/)"
}

# Every run uses one snapshot of the workflow and its package, so that the runs
# compare the same code even while the repository is being edited (the Snakefile puts
# its own folder on sys.path, which Snakemake's script preamble passes on to every job:
# found there before the editable install's import hook).
SRC=$OUT/src
rm -rf "$SRC" && mkdir -p "$SRC"
tar -C "$REPO" -cf - --exclude=./.venv --exclude=./.git --exclude=./.snakemake \
    --exclude=./.pytest_cache --exclude=./results --exclude=./work --exclude=./logs \
    --exclude=./resources --exclude=./benchmarks --exclude=__pycache__ . | tar -C "$SRC" -xf -

# --- 1. cluster -------------------------------------------------------------
t=$(now)
first=$("$HERE/start_cluster.sh") || { echo "$first"; fail "start_cluster.sh failed"; }
echo "$first"
installed=""
if grep -q "installing" <<<"$first"; then installed=", apt-get install included"; fi
note "cluster set-up: $(since "$t") s$installed"
again=$("$HERE/start_cluster.sh") || fail "a second start_cluster.sh failed"
if grep -q " started (pid" <<<"$again"; then fail "a second start_cluster.sh started daemons again"; fi
sinfo -h -o "%T" | grep -qE "idle|mixed" || fail "node not idle after a second start"

# --- 2. the demo, locally and under SLURM ------------------------------------
rm -rf "$OUT/local" "$OUT/slurm" "$OUT/fail"
t=$(now)
smk --cores 2 --directory "$OUT/local" >"$OUT/local.log" 2>&1 || fail "local demo (see $OUT/local.log)"
note "local demo: $(since "$t") s"

t=$(now)
smk --profile profiles/slurm --directory "$OUT/slurm" "${FAST[@]}" >"$OUT/slurm.log" 2>&1 \
    || fail "demo under SLURM (see $OUT/slurm.log)"
note "SLURM demo: $(since "$t") s, $(grep -c 'has been submitted with SLURM jobid' "$OUT/slurm.log") SLURM jobs for $(grep -oE '^[0-9]+ of [0-9]+ steps' "$OUT/slurm.log" | tail -1 | awk '{print $3}') workflow jobs"
compare "$OUT/local" "$OUT/slurm"

# --- 3. failure: sub-03's job killed by SLURM for exceeding its memory -------
export FAULT_MATCH="run=sub-03," FAULT_MEM_MB=100 FAULT_STATE=$OUT/faults
: >"$FAULT_STATE"
fault_path=$HERE/fault:$PATH

t=$(now)
set +e
(cd "$SRC" && PATH=$fault_path FAULT_TIMES=1 "$BIN/snakemake" --profile profiles/slurm \
    --directory "$OUT/fail" "${FAST[@]}" --retries 0 >"$OUT/fail.log" 2>&1)
status=$?
set -e
[ "$status" -eq 1 ] || fail "the run with a killed job exited $status, not 1 (see $OUT/fail.log)"
[ "$(wc -l <"$FAULT_STATE")" -eq 1 ] || fail "the fault was not injected (see $OUT/fail.log)"
reason=$(grep -m1 "exceeded memory limit" "$OUT/fail.log") \
    || fail "SLURM's reason is not in the log (see $OUT/fail.log)"
# the outputs of the failed jobs, from each error report to the next top-level line
failed=$(awk '/Error in (group|rule)/ {on = 1; next} /^\[|^Finished|^Exiting|^Select/ {on = 0}
              on && /^ +output: /' "$OUT/fail.log" | grep -oE "sub-[0-9]+" | sort -u | tr '\n' ' ')
[ "$failed" = "sub-03 " ] || fail "the failed jobs name '$failed', not sub-03 alone"
for n in 01 02 04 05 06 07 08; do
    [ -s "$OUT/fail/results/sub-$n/func/sub-${n}_atlas-demo_meas-precision_relmat.tsv" ] \
        || fail "sub-$n did not finish beside the failed sub-03"
done
[ ! -e "$OUT/fail/results/sub-03/func/sub-03_atlas-demo_meas-precision_relmat.tsv" ] \
    || fail "sub-03 has outputs although its job was killed"
note "failure, no retry: exit 1 after $(since "$t") s; failed: ${failed% }; the 7 other subjects finished"
note "  SLURM's reason in the log: ${reason}"

t=$(now)
(cd "$SRC" && PATH=$fault_path FAULT_TIMES=2 "$BIN/snakemake" --profile profiles/slurm \
    --directory "$OUT/fail" "${FAST[@]}" --retries 1 --verbose >"$OUT/retry.log" 2>&1) \
    || fail "the rerun with --retries 1 failed (see $OUT/retry.log)"
[ "$(wc -l <"$FAULT_STATE")" -eq 2 ] || fail "the second fault was not injected"
grep -q "exceeded memory limit" "$OUT/retry.log" || fail "no memory kill in $OUT/retry.log"
grep -q "Trying to restart job" "$OUT/retry.log" || fail "the killed job was not retried"
mems=$(grep "sbatch call: .*run=sub-03," "$OUT/retry.log" | grep -oE -- "--mem [0-9]+" | awk '{print $2}' | tr '\n' ' ')
read -r first second _ <<<"$mems"
[ -n "${second:-}" ] && [ "$second" -eq $((2 * first)) ] \
    || fail "the retry asked for --mem ${second:-?}, not twice ${first:-?}"
note "failure, --retries 1: killed at --mem $FAULT_MEM_MB (Snakemake asked $first MB), retried with --mem $second MB, completed in $(since "$t") s"
compare "$OUT/local" "$OUT/fail"

# --- 4. stop ----------------------------------------------------------------
trap - EXIT
stop_cluster
if [ "${COHORT_SLURM_KEEP:-0}" != 1 ]; then
    left=$(for name in munged slurmctld slurmscriptd slurmd slurmstepd; do
               pgrep -a -x "$name" || true; done)
    [ -z "$left" ] || fail "daemons left after stop_cluster.sh: $left"
    note "cluster stopped, no SLURM or munge daemon left"
fi
say "passed; logs and outputs in $OUT (summary: $SUMMARY)"
