# microVM backend: guest kernel, test guest, QEMU test of the guest side,
# and the end-to-end run. Included by the top-level Makefile (include mk/*.mk).
#
#   make vm-kernel      fetch Debian's linux-image-cloud-amd64 into vm/kernel/ (not committed)
#   make vm-agent       the static husk-agent (the guest's /init)
#   make vm-testguest   the assembly test guest, target/testguest.bin
#   make vm-test        cargo tests of the VMM and the VM lifecycle with the test guest on /dev/kvm (root)
#   make vm-qemu-test   boot the real kernel + husk initramfs + agent under QEMU/TCG
#   make vm-e2e         husk run of a busybox bundle in a microVM (needs vmx/svm)

VM_KERNEL_DIR  ?= vm/kernel
VM_KERNEL      ?= $(VM_KERNEL_DIR)/vmlinuz
VM_TARGET      := x86_64-unknown-linux-gnu
# The same flags as the top-level build, so the two share one build.
HUSK_RUSTFLAGS ?= -C target-feature=+crt-static -C relocation-model=static
# The agent is linked statically: it runs as PID 1 in a guest with no libc.
# A separate cargo invocation with an explicit --target keeps +crt-static
# away from proc-macros (they are built for the host without RUSTFLAGS).
# Its output is target/x86_64-unknown-linux-gnu/release/husk-agent.
VM_AGENT       := target/$(VM_TARGET)/release/husk-agent
TESTGUEST      := target/testguest.bin

.PHONY: vm-kernel vm-agent vm-testguest vm-test vm-qemu-test vm-e2e

vm-kernel: $(VM_KERNEL)

# apt-get download of the metapackage only gives a dependency on the real
# versioned package (linux-image-<ver>-cloud-amd64); fetch and unpack that.
$(VM_KERNEL):
	@set -e; tmp=$$(mktemp -d); chmod 755 $$tmp; trap 'rm -rf $$tmp' EXIT; \
	cd $$tmp && apt-get -o APT::Sandbox::User=root download linux-image-cloud-amd64 >/dev/null; \
	real=$$(dpkg-deb -f linux-image-cloud-amd64_*.deb Depends | tr ',' '\n' | \
		grep -o 'linux-image-[0-9][^ ]*-cloud-amd64' | head -n1); \
	test -n "$$real" || { echo "vm-kernel: no linux-image-*-cloud-amd64 dependency found" >&2; exit 1; }; \
	apt-get -o APT::Sandbox::User=root download $$real >/dev/null; \
	dpkg-deb -x $${real}_*.deb $$tmp/x; \
	cd - >/dev/null; mkdir -p $(VM_KERNEL_DIR); \
	cp $$tmp/x/boot/vmlinuz-* $(VM_KERNEL); \
	echo "vm-kernel: $$real -> $(VM_KERNEL)"

vm-agent:
	RUSTFLAGS="$(HUSK_RUSTFLAGS)" cargo build --release --bin husk-agent --target $(VM_TARGET)

vm-testguest: $(TESTGUEST)

$(TESTGUEST): vm/testguest/guest.S vm/testguest/guest.ld vm/testguest/build.sh
	vm/testguest/build.sh $@

vm-test: vm-testguest
	HUSK_VM_KVM_REQUIRED=1 cargo test --test vm_testguest --test vm_lifecycle

# The driver is tests/vm_qemu.rs; REQUIRED turns its "skipped" into a failure.
vm-qemu-test: vm-kernel vm-agent
	HUSK_VM_QEMU_REQUIRED=1 cargo test --test vm_qemu -- --nocapture

vm-e2e:
	integration/vm/e2e.sh
