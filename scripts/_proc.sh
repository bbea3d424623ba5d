# Process helpers shared by scripts/apiserver.sh and scripts/cluster.sh (sourced, not run).

# alive PID: true while PID exists and is not a zombie.
alive() {
  local pid=$1 st
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [[ "$st" != Z ]]
}

# pid_of PIDFILE MARKER: prints the pid in PIDFILE if that process is alive and its command line
# contains MARKER (the state directory it was started for), so a recycled pid is never ours.
pid_of() {
  local f=$1 marker=$2 pid
  [[ -f "$f" ]] || return 1
  pid=$(cat "$f")
  alive "$pid" || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  echo "$pid"
}
