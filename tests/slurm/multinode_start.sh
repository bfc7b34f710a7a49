#!/usr/bin/env bash
# Starts a throw-away multi-node SLURM on this one machine, as root:
#   * N "nodes" (default 3), each a network namespace (ip netns) plus a UTS namespace (its own
#     hostname) running one `slurmd -N mnI`, reachable at 10.251.X.(10+I) on its veth;
#   * a bridge fmrmnbrX in the root namespace joining the nodes' veths, with 10.251.X.1, on which
#     slurmctld (in its own UTS namespace, hostname mnctl) listens; the test's sbatch/scontrol
#     reach it there. X is the first 10.251.X.0/24 no route of this host uses;
#   * a private munged (own key, socket under DIR/munge): a pathname unix socket is reached through
#     the shared file system from every network namespace (checked below), so no munged per node.
# Traffic only flows between these namespaces and the addresses assigned here.
#   usage: tests/slurm/multinode_start.sh DIR [NODES]      then: source DIR/env
# DIR/env exports SLURM_CONF, FMR_MN_SUBNET, FMR_MN_NODES and the Open MPI settings (TCP BTL on
# the subnet only: no shared-memory transport between "nodes"). DIR/objects lists everything
# made (pids, namespaces, links); tests/slurm/multinode_stop.sh DIR removes exactly those.
# A registry entry /run/fmrmn/X.dir names DIR with the pid of the owner (FMR_MN_OWNER, default
# the caller's parent): a later start first stops every cluster whose owner has died (crashed
# run), so a second run after a crash starts clean. Fails loudly; on failure it removes what it made.
set -euo pipefail
die() { echo "multinode-start: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 DIR [NODES]"
HERE=$(cd "$(dirname "$0")" && pwd)
N=${2:-3}
[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, SlurmUser=root)"
for b in ip unshare nsenter munged munge unmunge slurmctld slurmd sinfo scontrol; do
    command -v "$b" >/dev/null || die "'$b' not found (iproute2, util-linux, munge, slurm-wlm: scripts/install-deps.sh)"
done
D=$(mkdir -p "$1" && cd "$1" && pwd)
owner=${FMR_MN_OWNER:-$PPID}

# --- crashed earlier runs: stop every registered cluster whose owner is gone
mkdir -p /run/fmrmn
for reg in /run/fmrmn/*.dir; do
    [ -e "$reg" ] || continue
    read -r odir opid < "$reg" || true
    if [ -z "${opid:-}" ] || ! kill -0 "$opid" 2>/dev/null; then
        echo "multinode-start: removing the leftovers of a dead run ($odir, owner $opid)" >&2
        bash "$HERE/multinode_stop.sh" "$odir" >&2 || true
        rm -f "$reg"
    fi
done
# leftover namespaces/links whose registry entry is gone too (crash between creating and registering)
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^fmrmn' || true); do
    x=${ns#fmrmn}; x=${x%%-*}
    if [ ! -e "/run/fmrmn/$x.dir" ]; then
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
        ip netns delete "$ns" 2>/dev/null || true
    fi
done
for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^fmrmn' || true); do
    x=${l#fmrmnbr}; x=${x#fmrmn}; x=${x%%v*}
    [ -e "/run/fmrmn/$x.dir" ] || ip link delete "$l" 2>/dev/null || true
done

# --- a free 10.251.X.0/24 (no route of this host, no cluster of ours)
X=""
for x in $(seq 1 250); do
    if ! ip route show | grep -q "^10\.251\.$x\." && [ ! -e "/run/fmrmn/$x.dir" ]; then X=$x; break; fi
done
[ -n "$X" ] || die "no free 10.251.X.0/24 subnet"
SUB=10.251.$X
echo "$D $owner" > "/run/fmrmn/$X.dir"
rm -rf "$D/state" "$D/spool" "$D/tmp" "$D/log" "$D/etc" "$D/run" "$D/munge"
mkdir -p "$D/state" "$D/spool" "$D/log" "$D/etc" "$D/run" "$D/jobs"
echo "registry /run/fmrmn/$X.dir" > "$D/objects"
ok=0
trap '[ $ok = 1 ] || { echo "multinode-start: failed; removing what was made" >&2; bash "$HERE/multinode_stop.sh" "$D" >&2 || true; }' EXIT

# --- private munged: own key and socket, so no other test's munged matters
install -d -m 0700 "$D/munge"
dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$D/munge/munge.key"
SOCK=$D/munge/munge.socket
munged --force --socket="$SOCK" --key-file="$D/munge/munge.key" --pid-file="$D/munge/munged.pid" \
       --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed" \
    || die "munged did not start (see $D/munge/munged.log)"
for _ in $(seq 100); do [ -s "$D/munge/munged.pid" ] && break; sleep 0.05; done
[ -s "$D/munge/munged.pid" ] || die "munged wrote no pid file"
echo "pid $D/munge/munged.pid" >> "$D/objects"
munge -S "$SOCK" -n | unmunge -S "$SOCK" >/dev/null || die "munge does not work (see $D/munge/munged.log)"

# --- bridge and nodes
BR=fmrmnbr$X
ip link add "$BR" type bridge || die "cannot create bridge $BR"
echo "link $BR" >> "$D/objects"
ip addr add "$SUB.1/24" dev "$BR"
ip link set "$BR" up
nodes=""
for i in $(seq 1 "$N"); do
    ns=fmrmn$X-n$i
    ip netns add "$ns" || die "cannot create network namespace $ns (ip netns add)"
    echo "netns $ns" >> "$D/objects"
    ip link add "fmrmn${X}v$i" type veth peer name eth0 netns "$ns" || die "cannot create veth for $ns"
    echo "link fmrmn${X}v$i" >> "$D/objects"
    ip link set "fmrmn${X}v$i" master "$BR" up
    ip -n "$ns" addr add "$SUB.$((10 + i))/24" dev eth0
    ip -n "$ns" link set lo up
    ip -n "$ns" link set eth0 up
    nodes="$nodes mn$i"
done
nodes=${nodes# }
# the links are proven below: every slurmd registers with slurmctld over its veth and the bridge,
# and slurmctld reaches each slurmd at its NodeAddr (no ping on this machine)
# one munged for all: its socket is a path on the shared file system
for i in $(seq 1 "$N"); do
    munge -S "$SOCK" -n | nsenter --net="/run/netns/fmrmn$X-n$i" unmunge -S "$SOCK" >/dev/null \
        || die "munge socket $SOCK not usable from namespace fmrmn$X-n$i"
done

# --- optional link shaping (FMR_MN_NETEM="delay 50us rate 10gbit"): on every node's veth
if [ -n "${FMR_MN_NETEM:-}" ]; then
    for i in $(seq 1 "$N"); do
        # shellcheck disable=SC2086
        ip netns exec "fmrmn$X-n$i" tc qdisc add dev eth0 root netem $FMR_MN_NETEM || die "tc netem failed"
    done
fi

# --- ports: free in the root namespace (slurmctld); slurmd listens inside its own namespace
port=$(/usr/bin/python3 - <<'PY'
import socket
def free(p):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", p)); return True
    except OSError:
        return False
    finally:
        s.close()
for p in range(7917, 8917, 2):
    if free(p) and free(p + 1):
        print(p); break
PY
)
[ -n "$port" ] || die "no free port pair"

hw=$(slurmd -C | head -1)
cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
[ -n "$cpus" ] && [ -n "$mem" ] || die "cannot parse 'slurmd -C': $hw"
mem=$((mem * 9 / 10 / N))   # the nodes share this machine's memory
{
cat <<CONF
# generated by tests/slurm/multinode_start.sh: $N nodes in network namespaces on $SUB.0/24
ClusterName=fmrmn$X
SlurmctldHost=mnctl($SUB.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$SOCK,cred_expire=5
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
# per-node scratch: the PMIx plugin puts its client directories (spmix_appdir_*) under TmpFS
TmpFS=$D/tmp/%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MpiDefault=pmix
SwitchType=switch/none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=5
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt
ReturnToService=2
MinJobAge=300
KillWait=5
InactiveLimit=0
# a killed node is noticed quickly (the node-failure test); requeue jobs of failed nodes
SlurmctldTimeout=30
SlurmdTimeout=10
MessageTimeout=5
JobRequeue=1
CONF
for i in $(seq 1 "$N"); do
    echo "NodeName=mn$i NodeAddr=$SUB.$((10 + i)) NodeHostname=mn$i CPUs=$cpus RealMemory=$mem State=UNKNOWN"
done
echo "PartitionName=mn Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
} > "$D/etc/slurm.conf"
export SLURM_CONF=$D/etc/slurm.conf
cat > "$D/env" <<ENV
export SLURM_CONF=$SLURM_CONF
export FMR_MN_SUBNET=$SUB.0/24
export FMR_MN_NODES="$nodes"
export FMR_MN_NETNS_PREFIX=fmrmn$X-n
export FMR_MN_MUNGE_SOCKET=$SOCK
export OMPI_MCA_btl=tcp,self
export OMPI_MCA_pml=ob1
export OMPI_MCA_btl_tcp_if_include=$SUB.0/24
export OMPI_MCA_oob_tcp_if_include=$SUB.0/24
# all "nodes" share two cores: a rank waiting in MPI yields instead of spinning (3x faster here)
export OMPI_MCA_mpi_yield_when_idle=1
ENV

wait_pid() {  # pidfile what
    for _ in $(seq 200); do [ -s "$1" ] && return 0; sleep 0.05; done
    die "$2 wrote no pid file $1 (see $D/log)"
}
# nsenter --net (not `ip netns exec`, which remounts /sys and so hides the cgroup file system
# slurmd needs). controller: its own hostname mnctl (it only runs where its name matches SlurmctldHost)
unshare --uts /bin/sh -c "hostname mnctl && exec slurmctld -f '$SLURM_CONF'" \
    || die "slurmctld failed to start (see $D/log/slurmctld.log)"
wait_pid "$D/run/slurmctld.pid" slurmctld
echo "pid $D/run/slurmctld.pid" >> "$D/objects"
for i in $(seq 1 "$N"); do
    mkdir -p "$D/spool/mn$i" "$D/tmp/mn$i"
    nsenter --net="/run/netns/fmrmn$X-n$i" unshare --uts /bin/sh -c "hostname mn$i && exec slurmd -N mn$i -f '$SLURM_CONF'" \
        || die "slurmd mn$i failed to start (see $D/log/mn$i.log)"
    wait_pid "$D/run/mn$i.pid" "slurmd mn$i"
    echo "pid $D/run/mn$i.pid" >> "$D/objects"
done

for _ in $(seq 300); do
    st=$(sinfo -h -N -o '%N %T' 2>/dev/null | sort -u || true)
    if [ "$(grep -c ' idle$' <<<"$st")" -eq "$N" ]; then
        ok=1
        echo "multinode-start: up in $D: nodes $nodes on $SUB.0/24 (bridge $BR), ports $port/$((port + 1))"
        exit 0
    fi
    sleep 0.1
done
echo "multinode-start: nodes not idle after 30 s: $st" >&2
tail -n 20 "$D/log/"*.log >&2 || true
exit 1
