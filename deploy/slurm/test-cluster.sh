#!/usr/bin/env bash
# A one-node Slurm cluster on loopback, for tests and CI (test/deploy-slurm.test.ts).
#
#   sudo deploy/slurm/test-cluster.sh          # install if missing, configure, start, wait for the node
#   sudo deploy/slurm/test-cluster.sh --stop   # stop the daemons it started
#
# Idempotent: installs slurm-wlm and munge with apt-get when they are missing (as root),
# creates a munge key if there is none, writes /etc/slurm/slurm.conf (node `localhost` at
# 127.0.0.1 with this machine's CPU count, one default partition `debug`), starts munged (as
# user munge), slurmctld and slurmd (as root) unless they already run, and waits until `sinfo`
# shows the node idle. Nothing listens beyond 127.0.0.1 except slurmctld/slurmd's own ports
# (6817/6818), which Slurm binds on every address.
#
# Environment: BNN_SLURM_CPUS (default: nproc), BNN_SLURM_WAIT_S (default 60).
# Exit status: 0 ready; 2 not root; 3 Slurm or munge missing and not installable; 1 other failure.
set -euo pipefail

CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
LOG_DIR=/var/log/slurm
SPOOL=/var/spool/slurm
CPUS=${BNN_SLURM_CPUS:-$(nproc)}
WAIT_S=${BNN_SLURM_WAIT_S:-60}

say() { echo "test-cluster: $*" >&2; }
die() {
  local code=$1
  shift
  say "error: $*"
  exit "$code"
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
pid_of_file() { [[ -f $1 ]] && cat "$1" || true; }

stop_daemons() {
  local f pid
  for f in /run/slurmd.pid /run/slurmctld.pid /run/munge/munged.pid; do
    pid=$(pid_of_file "$f")
    if pid_alive "$pid"; then
      say "stopping pid $pid ($f)"
      kill "$pid"
    fi
  done
}

if [[ ${1:-} == --stop ]]; then
  stop_daemons
  exit 0
fi

[[ $(id -u) -eq 0 ]] || die 2 "must run as root (it installs packages, writes $CONF and starts daemons)"

# 1. Packages.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  command -v apt-get >/dev/null || die 3 "slurmctld/slurmd/munged are missing and there is no apt-get to install them"
  say "installing slurm-wlm and munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends slurm-wlm munge >&2 ||
    die 3 "apt-get install slurm-wlm munge failed"
fi

# 2. munge: a key (readable by munge alone) and the daemon, as user munge.
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  say "creating /etc/munge/munge.key"
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! pid_alive "$(pid_of_file /run/munge/munged.pid)"; then
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged --force
fi
for _ in $(seq 50); do
  munge -n </dev/null | unmunge >/dev/null 2>&1 && break
  sleep 0.1
done
munge -n </dev/null | unmunge >/dev/null || die 1 "munged does not answer (see /var/log/munge/munged.log)"

# 3. slurm.conf: one node on loopback; no cgroups, no accounting.
install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$SPOOL" "$SPOOL/ctld" "$SPOOL/d"
conf=$(
  cat <<EOF
# Written by deploy/slurm/test-cluster.sh: a one-node test cluster on loopback.
ClusterName=bnntest
SlurmctldHost=localhost(127.0.0.1)
AuthType=auth/munge
# a requeued job waits cred_expire seconds before it may start again (default 120)
AuthInfo=cred_expire=20
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$SPOOL/ctld
SlurmdSpoolDir=$SPOOL/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
KillWait=30
# the node's memory is not managed (no --mem in jobs)
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
)
changed=0
if [[ ! -f $CONF ]] || [[ $(cat "$CONF") != "$conf" ]]; then
  say "writing $CONF"
  printf '%s\n' "$conf" >"$CONF"
  changed=1
fi

# 4. Daemons (restarted when the config changed).
ctld_pid=$(pid_of_file /run/slurmctld.pid)
d_pid=$(pid_of_file /run/slurmd.pid)
if [[ $changed -eq 1 ]] && { pid_alive "$ctld_pid" || pid_alive "$d_pid"; }; then
  say "config changed: restarting slurmctld and slurmd"
  pid_alive "$d_pid" && kill "$d_pid"
  pid_alive "$ctld_pid" && kill "$ctld_pid"
  for _ in $(seq 50); do
    pid_alive "$d_pid" || pid_alive "$ctld_pid" || break
    sleep 0.1
  done
fi
if ! pid_alive "$(pid_of_file /run/slurmctld.pid)"; then
  say "starting slurmctld"
  /usr/sbin/slurmctld
fi
if ! pid_alive "$(pid_of_file /run/slurmd.pid)"; then
  say "starting slurmd (node localhost)"
  /usr/sbin/slurmd -N localhost
fi

# 5. Wait until the node is idle (a node left DOWN/DRAIN by an earlier run is resumed).
deadline=$((SECONDS + WAIT_S))
state=''
while ((SECONDS < deadline)); do
  state=$(sinfo -h -n localhost -o '%T' 2>/dev/null | head -1 || true)
  case $state in
  idle | mixed | allocated) break ;;
  down* | drain* | drained*) scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
case $state in
idle | mixed | allocated) say "ready: node localhost $state (Slurm $(sinfo -V | awk '{print $2}'))" ;;
*) die 1 "node localhost is '${state:-unknown}' after ${WAIT_S}s (see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log)" ;;
esac
