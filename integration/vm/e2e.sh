#!/bin/sh
# make vm-e2e: `husk run` of a busybox bundle in a KVM microVM
# (annotation dev.husk.vm=true) with Debian's cloud kernel.
#
# It needs a CPU with hardware virtualization (vmx or svm in /proc/cpuinfo).
# Without one it says so and exits 77 ("not run"): a skipped run is never
# reported as a pass. On hosts whose /dev/kvm is nested PVM (no vmx/svm
# flags), the stock kernel stops with a KVM emulation failure; there the VM
# backend is covered by `make vm-test` (husk's VMM with the test guest)
# and `make vm-qemu-test` (the real kernel, initramfs and agent under QEMU).
#
# It drives the VM sandbox through husk's own lifecycle: `husk run` (exit
# status and output), then create/start/exec/kill/delete of a second
# container (exec's output and status, a signal ending the container).
set -eu
cd "$(dirname "$0")/../.."

if ! grep -qwE 'vmx|svm' /proc/cpuinfo; then
    echo "vm-e2e: NOT RUN: this CPU has no vmx/svm flag in /proc/cpuinfo, so KVM here"
    echo "vm-e2e: cannot boot a stock Linux guest (nested PVM). Run it on a host with"
    echo "vm-e2e: hardware virtualization. Covered here instead by: make vm-test (husk create/start/run/exec/kill with the test guest), make vm-qemu-test."
    exit 77
fi
[ -e /dev/kvm ] || { echo "vm-e2e: NOT RUN: /dev/kvm is missing"; exit 77; }

make -s -f mk/vm.mk vm-kernel vm-agent
cargo build --release --bin husk
BUSYBOX=$(command -v busybox) || { echo "vm-e2e: busybox is missing (apt-get install -y busybox-static)" >&2; exit 1; }

work=$(mktemp -d)
id="husk-vm-e2e-$$"
trap 'target/release/husk delete -f "$id" >/dev/null 2>&1 || true; target/release/husk delete -f "$id-2" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp "$BUSYBOX" "$work/rootfs/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$work/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$work/rootfs/etc/passwd"
echo 'root:x:0:' > "$work/rootfs/etc/group"
cat > "$work/config.json" <<JSON
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["/bin/sh", "-c", "echo hello from the husk microVM; uname -r; exit 3"],
    "env": ["PATH=/bin"],
    "cwd": "/"
  },
  "root": { "path": "rootfs", "readonly": false },
  "hostname": "husk-vm",
  "annotations": {
    "dev.husk.vm": "true",
    "dev.husk.vm.kernel": "$PWD/vm/kernel/vmlinuz",
    "dev.husk.vm.memory_mib": "256"
  },
  "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" } ] }
}
JSON

set +e
out=$(HUSK_AGENT="$PWD/target/x86_64-unknown-linux-gnu/release/husk-agent" \
      timeout 120 target/release/husk run --bundle "$work" "$id" 2>"$work/stderr")
status=$?
set -e
echo "$out"
fail() { echo "vm-e2e: FAIL: $*" >&2; cat "$work/stderr" >&2; exit 1; }
[ "$status" -eq 3 ] || fail "exit status $status, want 3"
echo "$out" | grep -q 'hello from the husk microVM' || fail "greeting missing from the output"

# A long-running container: exec into it, then end it with a signal.
sed -e 's|"args": \[.*\]|"args": ["/bin/sleep", "600"]|' "$work/config.json" > "$work/config2.json"
mkdir -p "$work/b2" && mv "$work/config2.json" "$work/b2/config.json" && ln -s "$work/rootfs" "$work/b2/rootfs"
export HUSK_AGENT="$PWD/target/x86_64-unknown-linux-gnu/release/husk-agent"
husk() { timeout 60 target/release/husk "$@"; }
husk create --bundle "$work/b2" "$id-2" </dev/null >/dev/null 2>"$work/stderr" || fail "create"
husk start "$id-2" 2>"$work/stderr" || fail "start"
set +e
out=$(husk exec "$id-2" /bin/sh -c 'echo exec in the guest; exit 5' 2>"$work/stderr")
status=$?
set -e
[ "$status" -eq 5 ] || fail "exec exit status $status, want 5"
[ "$out" = "exec in the guest" ] || fail "exec output: $out"
husk kill "$id-2" TERM 2>"$work/stderr" || fail "kill"
for _ in $(seq 100); do
    husk state "$id-2" | grep -q '"status": "stopped"' && break
    sleep 0.1
done
husk state "$id-2" | grep -q '"status": "stopped"' || fail "SIGTERM did not stop the container"
husk delete "$id-2" 2>"$work/stderr" || fail "delete"
echo "vm-e2e: PASS"
