#!/usr/bin/env bash
# Start a single-node SLURM cluster for tests: munged, slurmctld and slurmd, all state under one directory.
#
#   tests/slurm/start-cluster.sh [DIR]      # DIR defaults to a new mktemp -d; it is printed on the last line
#   source DIR/env.sh                       # SLURM_CONF and the srun/sbatch/... wrappers on PATH
#   tests/slurm/stop-cluster.sh DIR         # ends exactly the daemons started here (pid files in DIR/run)
#
# Installs Debian's slurm-wlm and munge with apt-get when they are missing (root only; ~10 s). The node is
# `localhost` with this machine's CPUs and memory and `Gres=gpu:2` declared by count in gres.conf, so GPU requests
# schedule on a machine without GPUs (gres.conf below). No accounting (use --slurm-no-account --slurm-status-command squeue),
# proctrack/linuxproc and task/none (no cgroups needed). Ports are the first free pair from 16817 (or
# $TDANN_SLURM_PORT), so a second cluster or a system slurm on 6817 does not collide.
#
# The slurm executor's job step clears SLURM_CONF before its inner `srun`; DIR/bin holds wrappers for the client
# commands that set SLURM_CONF themselves, and env.sh puts them first on PATH (sbatch --export=ALL carries PATH into
# the job).
#
# Exit status: 0 up and idle; 77 SLURM is missing and cannot be installed here (no apt-get or not root);
# anything else: a real failure (logs in DIR/log are printed).
set -euo pipefail

DIR=${1:-$(mktemp -d /tmp/tdann-slurm.XXXXXX)}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
chmod 700 "$DIR"

need=(slurmctld slurmd sbatch srun squeue sinfo scontrol scancel munged)
missing() { for c in "${need[@]}"; do command -v "$c" >/dev/null || return 0; done; return 1; }
if missing; then
  if ! command -v apt-get >/dev/null || [ "$(id -u)" != 0 ]; then
    echo "start-cluster: slurm/munge missing and apt-get unavailable or not root; cannot install" >&2
    exit 77
  fi
  echo "start-cluster: installing slurm-wlm and munge with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A policy-rc.d that denies service starts keeps the packages' own daemons from starting (Docker images ship
  # one; add it for the install where there is none).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -q --no-install-recommends slurm-wlm munge >"$DIR/apt.log" 2>&1 || {
    apt-get update -q >>"$DIR/apt.log" 2>&1 &&
      apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$DIR/apt.log" 2>&1
  } || { tail -20 "$DIR/apt.log" >&2; echo "start-cluster: apt-get install failed" >&2; exit 1; }
fi
if [ "$(id -u)" != 0 ]; then
  echo "start-cluster: slurmd must run as root" >&2
  exit 77
fi

mkdir -p "$DIR"/{munge,state,spool,run,log,bin,dev}
chmod 700 "$DIR/munge"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=${TDANN_SLURM_PORT:-16817}
until port_free "$port" && port_free $((port + 1)); do port=$((port + 2)); done

cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
conf="$DIR/slurm.conf"
cat >"$conf" <<EOF
# Written by tests/slurm/start-cluster.sh: a throwaway single-node cluster.
ClusterName=tdanntest
SlurmctldHost=localhost
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
PlugStackConfig=$DIR/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdParameters=config_overrides
# Finished jobs stay visible to squeue / scontrol for an hour: the executor's squeue status checks and the
# tests' scontrol evidence both need them.
MinJobAge=3600
KillWait=5
SchedulerParameters=sched_interval=2
NodeName=localhost CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
# Two GPUs with no hardware behind them: slurmd drops a gpu GRES that has no File (even with Count= or
# Flags=CountOnly) and wants character devices, so each "GPU" is a link to /dev/null. task/none binds nothing;
# the scheduler only counts them (and sets CUDA_VISIBLE_DEVICES in the job, harmless without CUDA).
ln -sfn /dev/null "$DIR/dev/gpu0"
ln -sfn /dev/null "$DIR/dev/gpu1"
echo "NodeName=localhost Name=gpu File=$DIR/dev/gpu[0-1]" >"$DIR/gres.conf"
: >"$DIR/plugstack.conf"

for c in sbatch srun squeue sinfo scontrol scancel; do
  printf '#!/bin/sh\nexport SLURM_CONF=%s\nexec %s "$@"\n' "$conf" "$(command -v "$c")" >"$DIR/bin/$c"
  chmod +x "$DIR/bin/$c"
done
cat >"$DIR/env.sh" <<EOF
export SLURM_CONF=$conf
export PATH=$DIR/bin:\$PATH
EOF

fail() {
  echo "start-cluster: $1" >&2
  for f in "$DIR"/log/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -20 "$f" >&2; }; done
  "$(dirname "$0")/stop-cluster.sh" "$DIR" >&2 || true
  exit 1
}

dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge/munge.key"
# --force: as root, and with the key and socket in /tmp, munged refuses by default.
munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
  --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed" \
  >>"$DIR/log/munged.log" 2>&1 || fail "munged did not start"

export SLURM_CONF=$conf
start=$SECONDS
slurmctld -c -f "$conf" >>"$DIR/log/slurmctld.log" 2>&1 || fail "slurmctld did not start"
slurmd -N localhost -f "$conf" >>"$DIR/log/slurmd.log" 2>&1 || fail "slurmd did not start"

# A daemon is alive while the pid in its pid file runs; the file appears a moment after the fork, so give it 10 s.
alive() {
  [ -s "$DIR/run/$1.pid" ] || [ $SECONDS -lt $((start + 10)) ] || return 1
  [ ! -s "$DIR/run/$1.pid" ] || [ -e "/proc/$(cat "$DIR/run/$1.pid")" ]
}
state=
while [ $SECONDS -lt $((start + 60)) ]; do
  alive slurmctld || fail "slurmctld exited"
  alive slurmd || fail "slurmd exited"
  state=$(timeout 5 sinfo -h -N -o %t 2>/dev/null || true)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || fail "node not idle after 60 s (sinfo state: '${state:-none}')"
echo "start-cluster: up in $((SECONDS - start)) s (script $SECONDS s), node localhost idle, $cpus CPUs, $mem_mb MB, gpu:2, port $port" >&2
echo "$DIR"
