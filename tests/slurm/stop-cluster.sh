#!/usr/bin/env bash
# Stop the cluster that tests/slurm/start-cluster.sh started in DIR: cancel its jobs, then end exactly the daemons
# whose pid files are in DIR/run (slurmd, slurmctld, munged), checking each pid still runs that daemon.
#   tests/slurm/stop-cluster.sh DIR
set -uo pipefail

DIR=${1:?usage: stop-cluster.sh DIR}
[ -d "$DIR/run" ] || { echo "stop-cluster: $DIR/run does not exist" >&2; exit 1; }

# Jobs first, so no slurmstepd outlives its slurmd.
if [ -f "$DIR/slurm.conf" ] && [ -s "$DIR/run/slurmctld.pid" ]; then
  export SLURM_CONF=$DIR/slurm.conf
  ids=$(timeout 10 squeue -h -o %i -t PD,R,CG,S 2>/dev/null || true)
  if [ -n "$ids" ]; then
    timeout 10 scancel $ids 2>/dev/null || true
    for _ in $(seq 40); do
      [ -z "$(timeout 5 squeue -h -o %i -t PD,R,CG,S 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
fi

stop() {  # stop NAME: TERM the pid in DIR/run/NAME.pid if it is that daemon, KILL after 10 s
  local name=$1 pidfile="$DIR/run/$1.pid" pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    [ -e "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}

stop slurmd
stop slurmctld
stop munged
echo "stop-cluster: stopped the daemons of $DIR" >&2
