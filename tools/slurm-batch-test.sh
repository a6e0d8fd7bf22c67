#!/usr/bin/env bash
# `kandinsky batch` on a real Slurm: a single-node cluster from Debian's slurm-wlm and munge (configured for a
# machine without cgroups, its spool and logs in a folder of its own), a 3-task job array from
# `kandinsky batch slurm-script`, submitted with `sbatch --wait`, whose outputs must be byte-identical to a
# single-process `kandinsky batch` run; then an array task cancelled mid-way and the array resubmitted: nothing
# may be duplicated, missing or half-written. Run by .ci/run as root (the daemons need it) after the release build.
#
#   tools/slurm-batch-test.sh [BUILD_DIR]        (default .build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
kandinsky="$repo/${1:-.build/release}/kandinsky"
[ -x "$kandinsky" ] || { echo "slurm-batch-test: $kandinsky is missing (swift build -c release)" >&2; exit 1; }
for tool in slurmctld slurmd sbatch munged; do
    command -v "$tool" >/dev/null || {
        echo "slurm-batch-test: $tool is missing (apt-get install slurm-wlm munge)" >&2
        exit 1
    }
done
[ "$(id -u)" = 0 ] || { echo "slurm-batch-test: the Slurm daemons need root" >&2; exit 1; }
started=$(date +%s)
work=$(mktemp -d /tmp/kandinsky-slurm.XXXXXX)
fail() { echo "FAIL $*" >&2; exit 1; }

# --- a one-node cluster ------------------------------------------------------------------------------------------
host=$(hostname -s)
mkdir -p "$work/spool/ctld" "$work/spool/d" "$work/log" /run/munge
chown munge:munge /run/munge
munge_started=0
if ! munge -n >/dev/null 2>&1; then
    munged --force
    munge_started=1
fi
cat > "$work/slurm.conf" <<CONF
ClusterName=kandinsky-test
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$work/spool/ctld
SlurmdSpoolDir=$work/spool/d
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
JobAcctGatherType=jobacct_gather/none
$(slurmd -C | head -1)
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
stop() {
    for pidfile in "$work/slurmd.pid" "$work/slurmctld.pid"; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    if [ "$munge_started" = 1 ] && [ -f /run/munge/munged.pid ]; then
        kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    fi
    sleep 1
    rm -rf "$work"
}
trap stop EXIT
slurmctld
slurmd
for _ in $(seq 1 60); do
    sinfo -h -o %t 2>/dev/null | grep -q idle && break
    sleep 1
done
sinfo -h -o %t | grep -q idle || { cat "$work/log/"*.log >&2; fail "the Slurm node did not come up"; }
echo "slurm: node $host idle"

# --- the manifest: 6 small text2img items, seeds from --base-seed --------------------------------------------------
# item PROMPT STEPS NAME: one manifest line.
item() {
    printf '{"task": "text2img", "parameters": {"prompt": "%s", "num_inference_steps": %s, ' "$1" "$2"
    printf '"prior_num_inference_steps": 2}, "output": "%s"}\n' "$3"
}
manifest="$work/manifest.jsonl"
for index in 0 1 2 3 4 5; do item "a red circle on a blue background" 2 "img-$index.png"; done > "$manifest"
batch=(--base-seed 40 --precision fp32)

"$kandinsky" batch run "$manifest" --out "$work/single" "${batch[@]}" --quiet
"$kandinsky" batch slurm-script "$manifest" --out "$work/array" --tasks 3 --base-seed 40 --precision fp32 \
    > "$work/array.sh"
grep -q -- '--array=0-2' "$work/array.sh" || fail "the script has no 3-task array"
sbatch --wait --quiet "$work/array.sh" || { cat "$work/array/logs/"* >&2; fail "the array job failed"; }
for index in 0 1 2 3 4 5; do
    cmp -s "$work/single/img-$index.png" "$work/array/img-$index.png" || fail "img-$index.png differs from one process"
done
"$kandinsky" batch status "$work/array" | grep -q "6 items: 6 done" || fail "status of the array run"
for shard in 0 1 2; do
    [ -f "$work/array/results/shard-$shard-of-3.jsonl" ] || fail "no results file of shard $shard"
done
echo "ok   a 3-task array wrote the same bytes as one process"

# --- cancel one task mid-way, resubmit ------------------------------------------------------------------------------
# Slow items (many steps) so that a task is cancelled while it runs an item.
slow="$work/slow.jsonl"
for index in 0 1 2 3 4 5; do item "a green square" 60 "slow-$index.png"; done > "$slow"
"$kandinsky" batch slurm-script "$slow" --out "$work/slow" --tasks 3 --base-seed 7 --precision fp32 > "$work/slow.sh"
job=$(sbatch --parsable "$work/slow.sh")
# Wait until task 1 has finished an item and is on its next one, then cancel it.
for _ in $(seq 1 300); do
    if [ -s "$work/slow/results/shard-1-of-3.jsonl" ]; then break; fi
    sleep 0.2
done
[ -s "$work/slow/results/shard-1-of-3.jsonl" ] || fail "task 1 never finished an item"
scancel "${job}_1"
for _ in $(seq 1 600); do
    squeue -h -j "$job" 2>/dev/null | grep -q . || break
    sleep 0.5
done
"$kandinsky" batch status "$work/slow" > "$work/status-after-cancel" || true
grep -q "missing" "$work/status-after-cancel" ||
    fail "the cancelled task left nothing missing: $(cat "$work/status-after-cancel")"
sbatch --wait --quiet "$work/slow.sh" || fail "the resubmitted array failed"
"$kandinsky" batch status "$work/slow" | grep -q "6 items: 6 done, 0 failed, 0 missing" || fail "status after resubmit"
leftovers=$(find "$work/slow" -name '*.tmp*' -o -name '.*png*' | wc -l)
[ "$leftovers" = 0 ] || fail "half-written files left: $(find "$work/slow" -name '*.tmp*' -o -name '.*png*')"
pngs=$(find "$work/slow" -maxdepth 1 -name '*.png' | wc -l)
[ "$pngs" = 6 ] || fail "$pngs outputs instead of 6"
"$kandinsky" batch run "$slow" --out "$work/slow-single" --base-seed 7 --precision fp32 --quiet
for index in 0 1 2 3 4 5; do
    cmp -s "$work/slow/slow-$index.png" "$work/slow-single/slow-$index.png" || fail "slow-$index.png differs"
done
# Each item was finished once, except an item the cancel may have cut between its write and its record.
done_records=$(cat "$work/slow/results/"*.jsonl | grep -c '"state":"done"')
[ "$done_records" -le 7 ] || fail "$done_records done records for 6 items"
echo "ok   after a cancelled task and a resubmit: 6 outputs, byte-identical, none half-written" \
    "($done_records done records)"
echo "slurm batch test: passed in $(($(date +%s) - started)) s"
