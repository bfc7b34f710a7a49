# shellcheck shell=bash
# The MPI launcher of fmrecon's sbatch templates (sourced by slurm/*.sbatch; docs/slurm.md).
#   FMR_LAUNCHER  auto (default) | pmix | pmi2 | mpirun
#     pmix    srun --mpi=pmix   (Open MPI 4/5 built with PMIx, e.g. Debian's; most sites)
#     pmi2    srun --mpi=pmi2   (MPICH, Intel MPI, Cray MPICH, Open MPI built with PMI-2)
#     mpirun  the MPI's own mpirun inside the allocation (it reads the SLURM allocation); for an
#             MPI that srun cannot start. FMR_MPIRUN names it (default mpirun).
#     auto    the first of pmix, pmi2 that `srun --mpi=list` offers, else mpirun.
# Threads: --cpus-per-task C sets OMP_NUM_THREADS=C (OpenMP, FFTW's threads and oneDNN's OpenMP
# runtime all follow it) and SRUN_CPUS_PER_TASK=C (srun >= 22.05 no longer inherits it from sbatch),
# so ranks x threads never oversubscribe the cores SLURM gave the job.
fmr_threads() {
    local c=${SLURM_CPUS_PER_TASK:-1}
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$c}
    export SRUN_CPUS_PER_TASK=$c
    export OMP_PROC_BIND=${OMP_PROC_BIND:-false}
}

# prints the launcher to use (pmix, pmi2 or mpirun); fails on an unknown FMR_LAUNCHER
fmr_launcher() {
    local l=${FMR_LAUNCHER:-auto} list
    case $l in
    pmix | pmi2 | mpirun) echo "$l" ;;
    auto)
        list=$(srun --mpi=list 2>&1 || true)
        if grep -qE '(^|[[:space:]])pmix([[:space:]]|$)' <<<"$list"; then echo pmix
        elif grep -qE '(^|[[:space:]])pmi2([[:space:]]|$)' <<<"$list"; then echo pmi2
        else echo mpirun
        fi ;;
    *) echo "fmr: FMR_LAUNCHER='$l' is not auto, pmix, pmi2 or mpirun" >&2; return 2 ;;
    esac
}

# fmr_launch_cmd NODES NTASKS PER_NODE: sets the array FMR_CMD to the launcher's command line
# (empty counts: the whole allocation); "${FMR_CMD[@]}" prog args... then starts the ranks, and
# `"${FMR_CMD[@]}" prog &` leaves $! = the launcher itself (signals can be forwarded to it).
# A rank that dies ends the whole step (srun --kill-on-bad-exit; mpirun does so by default), so
# the other ranks never wait forever in a collective.
fmr_launch_cmd() {
    local n=$1 p=$2 r=$3 l
    l=${FMR_LAUNCHER_RESOLVED:-$(fmr_launcher)} || return 2
    if [ "$l" = mpirun ]; then
        FMR_CMD=("${FMR_MPIRUN:-mpirun}" -x OMP_NUM_THREADS)
        [ -n "$p" ] && FMR_CMD+=(-np "$p")
        [ -n "$r" ] && FMR_CMD+=(--map-by "ppr:$r:node")
        [ -n "$n" ] && FMR_CMD+=(--host "$(fmr_hosts "$n" "${r:-1}")")
    else
        FMR_CMD=(srun --kill-on-bad-exit=1 --mpi="$l")
        [ -n "$n" ] && FMR_CMD+=(-N "$n")
        [ -n "$p" ] && FMR_CMD+=(-n "$p")
        [ -n "$r" ] && FMR_CMD+=(--ntasks-per-node="$r")
    fi
    return 0
}

# fmr_run NODES NTASKS PER_NODE -- COMMAND...: runs COMMAND as MPI ranks (in the foreground)
fmr_run() {
    fmr_launch_cmd "$1" "$2" "$3" || return 2
    shift 3
    [ "${1:-}" = -- ] && shift
    "${FMR_CMD[@]}" "$@"
}

# the first N hosts of the allocation, each with R slots, for mpirun --host
fmr_hosts() {
    scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n "$1" | sed "s/\$/:$2/" | paste -sd, -
}

# one line naming the launcher, the threads and (if set) Open MPI's transport choice
fmr_launch_info() {
    FMR_LAUNCHER_RESOLVED=$(fmr_launcher) || return 2
    export FMR_LAUNCHER_RESOLVED
    echo "$1: launcher $FMR_LAUNCHER_RESOLVED (FMR_LAUNCHER=${FMR_LAUNCHER:-auto}), ${SLURM_NTASKS:-?} ranks x" \
         "$OMP_NUM_THREADS thread(s)${OMPI_MCA_btl:+, Open MPI btl $OMPI_MCA_btl}${OMPI_MCA_btl_tcp_if_include:+ on $OMPI_MCA_btl_tcp_if_include}"
}
