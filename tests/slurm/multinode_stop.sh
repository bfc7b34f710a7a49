#!/usr/bin/env bash
# Removes what tests/slurm/multinode_start.sh DIR made, as listed in DIR/objects: every process
# inside the cluster's network namespaces (slurmd, slurmstepd, job steps), slurmctld and munged
# (SIGTERM, then SIGKILL after 5 s), the namespaces, veths and the bridge, and the registry entry.
# Idempotent: safe after a partial start, a crash, or a second call.
set -uo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
D=$1
[ -f "$D/objects" ] || exit 0
stop_pids() {  # pids...: TERM, wait up to 5 s, KILL
    [ $# -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null
    for _ in $(seq 50); do
        local alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
    kill -KILL "$@" 2>/dev/null
    return 0
}
mapfile -t netns < <(awk '$1 == "netns" {print $2}' "$D/objects")
# 1. everything running inside the nodes (slurmd first would orphan steps: take them all at once)
pids=()
for ns in "${netns[@]}"; do
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || continue
    mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$ns" 2>/dev/null)
done
stop_pids "${pids[@]}"
# 2. the daemons with pid files (slurmd pid files for nodes already gone are harmless), reverse order
for f in $(awk '$1 == "pid" {print $2}' "$D/objects" | tac); do
    [ -s "$f" ] || continue
    p=$(cat "$f")
    # only a process still running the expected program (pid reuse after a crash)
    if [ -r "/proc/$p/comm" ] && grep -qE '^(slurmctld|slurmd|munged)$' "/proc/$p/comm"; then
        stop_pids "$p"
    fi
    rm -f "$f"
done
# 3. namespaces and links
for ns in "${netns[@]}"; do
    ip netns delete "$ns" 2>/dev/null
done
for l in $(awk '$1 == "link" {print $2}' "$D/objects" | tac); do
    ip link show "$l" >/dev/null 2>&1 && ip link delete "$l" 2>/dev/null
done
for r in $(awk '$1 == "registry" {print $2}' "$D/objects"); do rm -f "$r"; done
rm -f "$D/objects"
exit 0
