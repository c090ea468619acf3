# husk — top-level Makefile.
#
#   make demo   install busybox-static, build, prepare bundles/busybox, run it
#   make test   install what the tests need, build, run cargo tests and the
#               podman integration test
#
# Other makefiles (mk/*.mk: vm, bench, ...) are included at the end.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# cargo from PATH, else rustup's default place (a minimal PATH, as under CI).
CARGO  ?= $(or $(shell command -v cargo 2>/dev/null),$(wildcard $(HOME)/.cargo/bin/cargo),cargo)
HUSK   := target/release/husk
# husk and husk-agent are linked statically and non-PIE: no dynamic loader,
# no relocations at start-up (a container start is a handful of short-lived
# processes). An explicit --target keeps these flags away from proc-macros.
HUSK_TARGET := x86_64-unknown-linux-gnu
export HUSK_RUSTFLAGS := -C target-feature=+crt-static -C relocation-model=static
BUNDLE := bundles/busybox

# Tests find the binary and the rootfs through these.
export HUSK_BIN := $(CURDIR)/$(HUSK)
export HUSK_BUNDLE_ROOTFS := $(CURDIR)/$(BUNDLE)/rootfs

# Containers need root; use sudo only when not root already.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Debian packages the tests use; the demo needs only the first.
DEMO_PKGS := busybox-static libc6-dev
TEST_PKGS := busybox-static libc6-dev runc crun podman containerd uidmap strace \
             iproute2 util-linux e2fsprogs qemu-system-x86 binutils

# apt_ensure(PACKAGES): install the packages that are not installed yet.
# Quick when everything is present (no apt-get call at all); when something
# is missing, one `apt-get update`, then one install.
define apt_ensure
@missing=""; \
for p in $(1); do \
	s=$$(dpkg-query -W -f='$${db:Status-Status}' "$$p" 2>/dev/null); \
	[ "$$s" = installed ] || missing="$$missing $$p"; \
done; \
if [ -z "$$missing" ]; then \
	echo "deps: installed: $(1)"; \
else \
	echo "deps: installing:$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$(SUDO) apt-get update -q && \
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
fi
endef

.PHONY: help deps deps-demo build bundle demo test test-cargo test-podman \
        clippy fmt fmt-check clean

help:
	@echo "make demo       build husk and run the busybox bundle"
	@echo "make test       install test deps, build, run cargo tests + podman test"
	@echo "make deps       install the Debian packages the tests use"
	@echo "make build      static release build -> $(HUSK) (and husk-agent)"
	@echo "make bundle     fill $(BUNDLE)/rootfs from busybox-static"
	@echo "make clippy     cargo clippy, warnings are errors"
	@echo "make fmt-check  cargo fmt --check"

deps:
	$(call apt_ensure,$(TEST_PKGS))

deps-demo:
	$(call apt_ensure,$(DEMO_PKGS))

build:
	RUSTFLAGS="$(HUSK_RUSTFLAGS)" $(CARGO) build --release --target $(HUSK_TARGET) --bin husk --bin husk-agent
	@mkdir -p target/release && ln -f target/$(HUSK_TARGET)/release/husk $(HUSK)
	@ln -f target/$(HUSK_TARGET)/release/husk-agent target/release/husk-agent

bundle:
	$(SUDO) bash $(BUNDLE)/prepare.sh

# A unique id per run; `husk run` deletes the container when it exits, the
# `delete --force` after it only covers a run that failed half-way.
demo: deps-demo build bundle
	@id=demo-$$$$; \
	echo "+ $(HUSK) run -b $(BUNDLE) $$id"; \
	$(SUDO) $(HUSK) run -b $(BUNDLE) $$id; rc=$$?; \
	$(SUDO) $(HUSK) delete --force $$id >/dev/null 2>&1 || true; \
	echo "(exit status $$rc)"; \
	exit $$rc

# Both suites run even when the first fails; the target fails if either did.
test: deps build bundle vm-kernel vm-testguest
	@rc=0; \
	$(MAKE) --no-print-directory test-cargo || rc=1; \
	$(MAKE) --no-print-directory test-podman || rc=1; \
	$(MAKE) --no-print-directory test-containerd || rc=1; \
	if [ $$rc -ne 0 ]; then echo "make test: FAILED"; else echo "make test: passed"; fi; \
	exit $$rc

# The tests themselves build in the dev profile (quick to compile); the
# binary they drive is the release one, through HUSK_BIN.
test-cargo:
	$(SUDO) env HUSK_BIN=$(HUSK_BIN) HUSK_BUNDLE_ROOTFS=$(HUSK_BUNDLE_ROOTFS) \
		HUSK_VM_KVM_REQUIRED=1 HUSK_VM_QEMU_REQUIRED=1 $(CARGO) test --no-fail-fast

test-podman:
	$(SUDO) env HUSK_BIN=$(HUSK_BIN) HUSK_BUNDLE_ROOTFS=$(HUSK_BUNDLE_ROOTFS) \
		bash integration/podman.sh

clippy:
	$(CARGO) clippy --release --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clean:
	$(CARGO) clean
	rm -rf $(BUNDLE)/rootfs

include $(wildcard mk/*.mk)
