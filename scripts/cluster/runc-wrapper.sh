#!/bin/bash
# containerd's runc for the local cluster (runtime option BinaryName in its config).
#
# Why: the development VMs run every process without CAP_SYS_RESOURCE in its bounding set, so
#  - a negative oom_score_adj cannot be set (containerd gives every pod sandbox -998, the kubelet
#    gives Guaranteed pods -997): runc fails with "can't get final child's PID from pipe: EOF";
#  - a container asking for a capability outside the bounding set (every privileged container
#    asks for all of them) fails with "unable to apply caps: operation not permitted".
# So before `runc create|run` (the bundle's config.json) and `runc exec` (the process.json) this
# drops the capabilities this process does not have and raises a lower oom_score_adj to ours.
# Where nothing is missing (a normal machine) it only execs runc.
RUNC=${KIVEBPF_RUNC:-/usr/sbin/runc}

# Capability names by bit number (linux/capability.h), as OCI specs spell them.
CAPS=(CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE
  NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO SYS_CHROOT
  SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE
  AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ
  PERFMON BPF CHECKPOINT_RESTORE)

bnd=$(awk '/^CapBnd:/ { print $2 }' /proc/self/status)
drop=""
for i in "${!CAPS[@]}"; do
  if (((0x$bnd >> i & 1) == 0)); then drop+="${drop:+,}\"CAP_${CAPS[$i]}\""; fi
done
[[ -z $drop ]] && exec "$RUNC" "$@"
# Without CAP_SYS_RESOURCE, oom_score_adj cannot go below its current value.
min_adj=-1000
[[ $drop == *'"CAP_SYS_RESOURCE"'* ]] && min_adj=$(cat /proc/self/oom_score_adj)

# patch FILE JQ_PATH: JQ_PATH is the process object in FILE ("" for the file itself, or ".process").
patch() {
  local file=$1 p=$2
  [[ -f $file ]] || return 0
  jq --argjson drop "[$drop]" --argjson min "$min_adj" "
    if $p.capabilities != null then $p.capabilities |= with_entries(
      .value |= (if type == \"array\" then map(select(. as \$c | \$drop | index(\$c) | not)) else . end))
    else . end
    | if ($p.oomScoreAdj // 0) < \$min then $p.oomScoreAdj = \$min else . end" \
    "$file" > "$file.kivebpf.tmp" && mv "$file.kivebpf.tmp" "$file"
}

cmd="" bundle="." process="" prev=""
for a in "$@"; do
  case $prev in
    --bundle | -b) bundle=$a ;;
    --process | -p) process=$a ;;
  esac
  case $a in
    --bundle=*) bundle=${a#--bundle=} ;;
    --process=*) process=${a#--process=} ;;
    create | run | exec) [[ -z $cmd ]] && cmd=$a ;;
  esac
  prev=$a
done
case $cmd in
  create | run) patch "$bundle/config.json" .process ;;
  exec) [[ -n $process ]] && patch "$process" "" ;;
esac
exec "$RUNC" "$@"
