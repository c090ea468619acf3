#!/usr/bin/env bash
# integration/containerd.sh — Debian's containerd (1.6, `ctr`) with husk as
# the runtime behind the runc shim (io.containerd.runc.v2 --runc-binary).
#
# A private containerd: root, state, gRPC and ttrpc sockets under one temp
# dir, CRI and the plugins that touch host paths (opt: /opt/containerd) or
# need other filesystems disabled. The runtime's state root (ctr run
# --runc-root) and the IO fifos (--fifo-dir) are in the temp dir too. The one
# host path containerd 1.6 writes whatever its config says is the shims'
# socket dir /run/containerd/s (hard-coded); our shims' sockets are removed,
# and /run/containerd if it did not exist before.
#
# The image is built from the busybox rootfs by integration/oci-image.py
# (an OCI image layout tarball) and imported with `ctr images import`.
# Containers get cgroups below this script's own cgroup (ctr run --cgroup)
# and ctr's default namespaces: their own empty network namespace, no
# traffic. Everything is removed at the end, pass or fail.
#
# Output: one line per case, "ok - name" or "not ok - name: reason", then
# "N passed, N failed". Exit status is non-zero when any case failed.
#
# Environment:
#   HUSK_CTR_RUNTIME   runtime binary to test (e.g. /usr/sbin/runc to check
#                      the harness itself); default $HUSK_BIN or
#                      target/release/husk
#   HUSK_BUNDLE_ROOTFS rootfs to build the image from (default
#                      bundles/busybox/rootfs)
#   HUSK_CTR_TIMEOUT   seconds allowed for one ctr call (default 60)
#   HUSK_CTR_KEEP=1    keep the temp dir (containerd's log, the trace);
#                      containers, mounts and cgroups still go
#   HUSK_CTR_TRACE=1   call the runtime through a wrapper that appends each
#                      call's argv, exit status and --log lines to
#                      $T/runtime-trace.log (printed at the end on failure)
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=integration/lib.sh
. "$here/lib.sh"

need_root

abs() { case "$1" in /*) echo "$1" ;; *) echo "$repo/$1" ;; esac; }

runtime=$(abs "${HUSK_CTR_RUNTIME:-${HUSK_BIN:-target/release/husk}}")
rootfs=$(abs "${HUSK_BUNDLE_ROOTFS:-bundles/busybox/rootfs}")
tmo=${HUSK_CTR_TIMEOUT:-60}
image=localhost/husk-busybox:test
ns=husk-test

if [ ! -x "$runtime" ]; then
	t_log "runtime $runtime is not an executable (build it: make build)"
	exit 2
fi
if [ ! -x "$rootfs/bin/busybox" ]; then
	t_log "no busybox in $rootfs (prepare it: make bundle)"
	exit 2
fi
for tool in containerd ctr containerd-shim-runc-v2 python3 timeout sha256sum; do
	if ! command -v "$tool" >/dev/null; then
		t_log "$tool is not installed (apt-get install containerd python3)"
		exit 2
	fi
done

T=$(mktemp -d /tmp/husk-ctrd.XXXXXX)
chmod 755 "$T"
CG_RECORD=$T/cgroup-tops
own_cg=$(cg_own_path)
cg_parent=${own_cg%/}/husk-ctr-$$
cg_check_below_own "$cg_parent" || exit 2
cg_prepare "$cg_parent"
sock=$T/containerd.sock
rt_root=$T/runc-root
fifo_dir=$T/fifo
run_ctrd_existed=0
[ -e /run/containerd ] && run_ctrd_existed=1
ctrd_pid=""
ids=() # every container id this run used

CTR=(ctr -a "$sock" -n "$ns")

# c ARGS...: ctr with the private socket and namespace, bounded in time;
# stderr merged into stdout. The exit status is ctr's.
c() {
	timeout -k 5 "$tmo" "${CTR[@]}" "$@" 2>&1
}

# The socket a 1.6 shim listens on: /run/containerd/s/sha256(address/ns/id).
shim_socket() {
	local h
	h=$(printf '%s' "$sock/$ns/$1" | sha256sum | cut -d' ' -f1)
	echo "/run/containerd/s/$h"
}

cleaned=0
cleanup() {
	[ "$cleaned" = 1 ] && return 0
	cleaned=1
	local problems="" pid d id

	# Containers first, through containerd (shim, runtime delete, cgroups).
	if [ -n "$ctrd_pid" ] && kill -0 "$ctrd_pid" 2>/dev/null; then
		for id in $(c tasks ls -q 2>/dev/null); do
			c tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1
		done
		for id in $(c tasks ls -q 2>/dev/null); do
			for _ in $(seq 50); do
				c tasks ls 2>/dev/null | grep -Eq "^$id .*(STOPPED|CREATED)" && break
				sleep 0.1
			done
			c tasks rm -f "$id" >/dev/null 2>&1 || problems+="ctr tasks rm -f $id failed; "
		done
		for id in $(c containers ls -q 2>/dev/null); do
			c containers rm "$id" >/dev/null 2>&1 || problems+="ctr containers rm $id failed; "
		done
		c images rm "$image" >/dev/null 2>&1
		kill -TERM "$ctrd_pid" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$ctrd_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$ctrd_pid" 2>/dev/null && problems+="containerd needed SIGKILL; "
		wait "$ctrd_pid" 2>/dev/null
	fi

	# Whatever still runs in our cgroups or mentions our temp dir (shims:
	# their argv has the socket path; the runtime: --root) is ours.
	while IFS= read -r d; do
		for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do
			kill -9 "$pid" 2>/dev/null && problems+="killed leftover pid $pid; "
		done
	done < <(cg_find '')
	for pid in $(pids_mentioning "$T"); do
		kill -9 "$pid" 2>/dev/null && problems+="killed leftover pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-80)); "
	done
	sleep 0.2

	for id in "${ids[@]}"; do
		[ -e "$rt_root/$ns/$id" ] && problems+="runtime state $rt_root/$ns/$id left behind; "
		d=$(shim_socket "$id")
		if [ -e "$d" ]; then
			rm -f "$d"
			problems+="shim socket $d left behind; "
		fi
	done
	if [ "$run_ctrd_existed" = 0 ]; then
		rmdir /run/containerd/s /run/containerd 2>/dev/null
		[ -e /run/containerd ] && problems+="/run/containerd left behind (not empty); "
	fi

	umount_below "$T"
	cg_cleanup || problems+="cgroups left under $cg_parent; "
	if [ "${HUSK_CTR_KEEP:-0}" = 1 ]; then
		t_log "keeping $T"
	else
		rm -rf --one-file-system "$T" || problems+="could not remove $T; "
	fi
	if [ -n "$problems" ]; then
		t_fail "cleanup" "$problems"
	fi
}
finish() {
	if [ "$T_FAILED" -gt 0 ] && [ -s "$T/runtime-trace.log" ]; then
		t_log "runtime calls (HUSK_CTR_TRACE):"
		sed 's/^/    /' "$T/runtime-trace.log" >&2
	fi
	cleanup
	t_summary
	exit $?
}
on_signal() {
	t_fail "containerd.sh" "interrupted by a signal"
	finish
}
trap cleanup EXIT
trap on_signal INT TERM HUP

t_log "runtime: $runtime"
t_log "cgroup parent: $cg_parent"
t_log "temp dir: $T"

# --- a private containerd ------------------------------------------------------
mkdir -p "$fifo_dir" "$rt_root"
cat >"$T/config.toml" <<CONF
version = 2
root = "$T/root"
state = "$T/state"
# CRI is not needed by ctr; opt would write /opt/containerd; the other
# snapshotters need filesystems this test does not use (overlayfs does).
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$sock"

[ttrpc]
  address = "$sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""
CONF
containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
ctrd_pid=$!
up=0
for _ in $(seq 100); do
	if [ -S "$sock" ] && c version >/dev/null 2>&1; then
		up=1
		break
	fi
	kill -0 "$ctrd_pid" 2>/dev/null || break
	sleep 0.1
done
if [ "$up" = 0 ]; then
	t_fail "containerd starts" "$(tail -n 5 "$T/containerd.log")"
	finish
fi
t_ok "containerd starts"

# --- the image -------------------------------------------------------------------
name="ctr images import (OCI layout from the busybox rootfs)"
if ! out=$(python3 "$here/oci-image.py" --ref "$image" "$rootfs" "$T/image.tar" 2>&1); then
	t_fail "$name" "oci-image.py: $out"
	finish
fi
# The index entry carries the full name (org.opencontainers.image.ref.name):
# import names the image after it (--index-name would add a second image
# for the index blob, which the layout has only as index.json).
out=$(c images import --platform linux/amd64 "$T/image.tar")
rc=$?
if [ "$rc" -ne 0 ] || ! c images ls -q | grep -qx "$image"; then
	t_fail "$name" "exit $rc: $out"
	finish
fi
t_ok "$name"

# The runtime the shim calls: the binary itself, or the tracing wrapper.
# The shim passes --log FILE in the bundle, removed with it: the wrapper
# copies what the call appended to it.
shim_runtime=$runtime
if [ "${HUSK_CTR_TRACE:-0}" = 1 ]; then
	shim_runtime=$T/runtime-trace
	cat >"$shim_runtime" <<WRAP
#!/bin/bash
log=""; prev=""
for a in "\$@"; do [ "\$prev" = --log ] && log=\$a; prev=\$a; done
before=0; [ -n "\$log" ] && [ -f "\$log" ] && before=\$(stat -c %s "\$log")
"$runtime" "\$@"; rc=\$?
{ echo "+ \$* => exit \$rc"
  [ -n "\$log" ] && [ -f "\$log" ] && tail -c +\$((before + 1)) "\$log" | sed 's/^/  log: /'
} >>"$T/runtime-trace.log"
exit \$rc
WRAP
	chmod 755 "$shim_runtime"
fi

# The runtime options every container gets (the runc shim's Options).
RT=(--runc-binary "$shim_runtime" --runc-root "$rt_root" --fifo-dir "$fifo_dir")

# new_id NAME: a container id, remembered for cleanup. Sets $id and $cg.
new_id() {
	id=$1-$$
	ids+=("$id")
	cg=$cg_parent/$id
}

# gone ID: prints what is left of a removed container (empty when nothing).
gone() {
	local left=""
	c containers ls -q | grep -qx "$1" && left+="ctr still lists container $1; "
	[ -e "$rt_root/$ns/$1" ] && left+="runtime state $rt_root/$ns/$1 left; "
	local cgs
	cgs=$(cg_find "$1")
	[ -n "$cgs" ] && left+="cgroups left: $(echo $cgs); "
	echo "$left"
}

# --- run --rm: hello, exit code ---------------------------------------------------
name="ctr run --rm echo hello"
new_id hello
out=$(c run --rm "${RT[@]}" --cgroup "$cg" "$image" "$id" echo hello)
rc=$?
left=$(gone "$id")
if [ "$rc" -ne 0 ]; then
	t_fail "$name" "exit $rc: $out"
elif [ "$out" != hello ]; then
	t_fail "$name" "output: $out"
elif [ -n "$left" ]; then
	t_fail "$name" "$left"
else
	t_ok "$name"
fi

name="ctr run --rm returns the exit code (sh -c 'exit 3')"
new_id exit3
out=$(c run --rm "${RT[@]}" --cgroup "$cg" "$image" "$id" sh -c 'exit 3')
rc=$?
if [ "$rc" -eq 3 ]; then t_ok "$name"; else t_fail "$name" "want 3, got $rc: $out"; fi

# --- memory limit ------------------------------------------------------------------
# ctr's default spec has no cgroup mount and no cgroup namespace: the
# container reads its own limit through a read-only bind of the memory
# hierarchy (v1) or the cgroup2 root, at its path from /proc/self/cgroup.
name="ctr run --memory-limit 64M: the container sees it"
new_id mem
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
	mem_src=/sys/fs/cgroup
	mem_script='cat /hostcg$(sed -n "s/^0:://p" /proc/self/cgroup)/memory.max'
else
	mem_src=/sys/fs/cgroup/memory
	mem_script='cat /hostcg$(sed -n "s/^[0-9]*:memory://p" /proc/self/cgroup)/memory.limit_in_bytes'
fi
out=$(c run --rm "${RT[@]}" --cgroup "$cg" --memory-limit 67108864 \
	--mount "type=bind,src=$mem_src,dst=/hostcg,options=rbind:ro" \
	"$image" "$id" sh -c "$mem_script")
rc=$?
if [ "$rc" -ne 0 ]; then
	t_fail "$name" "exit $rc: $out"
elif [ "$out" != 67108864 ]; then
	t_fail "$name" "limit is '$out', want 67108864"
else
	t_ok "$name"
fi

# --- a command that cannot be executed: the runtime's error reaches ctr --------------
# The shim reads the runtime's last error from its --log (JSON) file.
name="ctr run of a missing command shows the runtime's error"
new_id noexec
out=$(c run --rm "${RT[@]}" --cgroup "$cg" "$image" "$id" husk-no-such-command)
rc=$?
left=$(gone "$id")
if [ "$rc" -eq 0 ]; then
	t_fail "$name" "exit 0: $out"
elif ! grep -q 'OCI runtime create failed' <<<"$out" || ! grep -q 'husk-no-such-command' <<<"$out" ||
	! grep -q 'executable file not found' <<<"$out"; then
	t_fail "$name" "want 'OCI runtime create failed' and 'executable file not found' naming the command, got exit $rc: $out"
elif [ -n "$left" ]; then
	t_fail "$name" "$left"
else
	t_ok "$name"
fi

name="ctr run of a missing absolute path shows the runtime's error"
new_id noexec-abs
out=$(c run --rm "${RT[@]}" --cgroup "$cg" "$image" "$id" /nonexistent)
rc=$?
left=$(gone "$id")
if [ "$rc" -eq 0 ]; then
	t_fail "$name" "exit 0: $out"
elif ! grep -q 'OCI runtime create failed' <<<"$out" || ! grep -q '/nonexistent' <<<"$out" ||
	! grep -Eqi 'no such file|not found' <<<"$out"; then
	t_fail "$name" "exit $rc; want 'OCI runtime create failed' and 'no such file' naming /nonexistent (as runc: it checks at create), got: $out"
elif [ -n "$left" ]; then
	t_fail "$name" "$left"
else
	t_ok "$name"
fi

# --- a detached container: exec, ps, metrics, pause/resume, kill, rm -------------------
# task_status ID: the STATUS column of `ctr tasks ls` for ID.
task_status() {
	c tasks ls | awk -v id="$1" '$1 == id { print $3 }'
}

name="ctr run -d sleep 1000"
new_id detached
out=$(c run -d "${RT[@]}" --cgroup "$cg" "$image" "$id" sleep 1000)
rc=$?
st=$(task_status "$id")
if [ "$rc" -ne 0 ]; then
	t_fail "$name" "exit $rc: $out"
	id=""
elif [ "$st" != RUNNING ]; then
	t_fail "$name" "status '$st', want RUNNING"
else
	t_ok "$name"
fi
# cleanup removes a dead shim's socket by this name: say if it is wrong.
[ -n "$id" ] && [ ! -S "$(shim_socket "$id")" ] &&
	t_log "note: shim socket $(shim_socket "$id") not found (containerd's naming changed?)"

if [ -n "$id" ]; then
	name="ctr task exec echo hi"
	out=$(c tasks exec --fifo-dir "$fifo_dir" --exec-id e1 "$id" echo hi)
	rc=$?
	if [ "$rc" -ne 0 ] || [ "$out" != hi ]; then
		t_fail "$name" "exit $rc: $out"
	else
		t_ok "$name"
	fi

	name="ctr task exec returns the exit code (sh -c 'exit 4')"
	out=$(c tasks exec --fifo-dir "$fifo_dir" --exec-id e2 "$id" sh -c 'exit 4')
	rc=$?
	if [ "$rc" -eq 4 ]; then t_ok "$name"; else t_fail "$name" "want 4, got $rc: $out"; fi

	name="ctr task exec of a missing command fails with the runtime's error"
	out=$(c tasks exec --fifo-dir "$fifo_dir" --exec-id e3 "$id" husk-no-such-command)
	rc=$?
	if [ "$rc" -eq 0 ]; then
		t_fail "$name" "exit 0: $out"
	elif ! grep -q 'husk-no-such-command' <<<"$out"; then
		t_fail "$name" "error does not name the command: $out"
	else
		t_ok "$name"
	fi

	name="ctr task ps lists the container's process"
	pid=$(c tasks ls | awk -v id="$id" '$1 == id { print $2 }')
	out=$(c tasks ps "$id")
	rc=$?
	if [ "$rc" -ne 0 ]; then
		t_fail "$name" "exit $rc: $out"
	elif ! awk 'NR > 1 { print $1 }' <<<"$out" | grep -qx "$pid"; then
		t_fail "$name" "pid $pid not listed: $out"
	else
		t_ok "$name"
	fi

	# The shim reads the container's cgroup itself (found from the pid).
	name="ctr task metrics"
	out=$(c tasks metrics --format json "$id")
	rc=$?
	if [ "$rc" -ne 0 ]; then
		t_fail "$name" "exit $rc: $out"
	elif ! grep -q '"memory"' <<<"$out" || ! grep -q '"pids"' <<<"$out"; then
		t_fail "$name" "no memory/pids metrics: $(head -c 300 <<<"$out")"
	else
		t_ok "$name"
	fi

	name="ctr task pause, then resume"
	out=$(c tasks pause "$id")
	rc=$?
	st=$(task_status "$id")
	if [ "$rc" -ne 0 ]; then
		t_fail "$name" "pause: exit $rc: $out"
	elif [ "$st" != PAUSED ]; then
		t_fail "$name" "status after pause '$st', want PAUSED"
	else
		out=$(c tasks resume "$id")
		rc=$?
		st=$(task_status "$id")
		if [ "$rc" -ne 0 ]; then
			t_fail "$name" "resume: exit $rc: $out"
		elif [ "$st" != RUNNING ]; then
			t_fail "$name" "status after resume '$st', want RUNNING"
		else
			t_ok "$name"
		fi
	fi

	name="ctr task exec after resume"
	out=$(c tasks exec --fifo-dir "$fifo_dir" --exec-id e4 "$id" echo again)
	rc=$?
	if [ "$rc" -ne 0 ] || [ "$out" != again ]; then
		t_fail "$name" "exit $rc: $out"
	else
		t_ok "$name"
	fi

	name="ctr task kill -s SIGKILL, task rm, container rm"
	problems=""
	out=$(c tasks kill -s SIGKILL "$id") || problems+="kill: $out; "
	st=""
	for _ in $(seq 100); do
		st=$(task_status "$id")
		[ "$st" = STOPPED ] && break
		sleep 0.1
	done
	[ "$st" = STOPPED ] || problems+="status after kill '$st', want STOPPED; "
	out=$(c tasks rm "$id") || problems+="task rm: $out; "
	out=$(c containers rm "$id") || problems+="container rm: $out; "
	problems+=$(gone "$id")
	if [ -z "$problems" ]; then t_ok "$name"; else t_fail "$name" "$problems"; fi
fi

# --- nothing left ----------------------------------------------------------------------
name="no containers, tasks or runtime state left"
problems=""
out=$(c containers ls -q)
[ -n "$out" ] && problems+="ctr containers ls: $(echo $out); "
out=$(c tasks ls -q)
[ -n "$out" ] && problems+="ctr tasks ls: $(echo $out); "
out=$(ls -A "$rt_root/$ns" 2>/dev/null)
[ -n "$out" ] && problems+="runtime root: $(echo $out); "
for id in "${ids[@]}"; do
	[ -n "$(cg_find "$id")" ] && problems+="cgroup of $id; "
done
if [ -z "$problems" ]; then t_ok "$name"; else t_fail "$name" "$problems"; fi

finish
