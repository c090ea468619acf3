# make test-containerd   Debian's containerd (ctr, runc shim) with husk as
#                        the runtime: integration/containerd.sh
#
# CTRD_RUNTIME=/usr/sbin/runc checks the harness itself against runc.
# Self-contained: works included from the top-level Makefile or alone
# (make -f mk/containerd.mk test-containerd). Names are ctrd-prefixed.


CTRD_SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)
CTRD_PKGS    := containerd runc busybox-static python3
CTRD_HUSK    ?= $(or $(HUSK_BIN),$(CURDIR)/target/release/husk)
CTRD_ROOTFS  ?= $(or $(HUSK_BUNDLE_ROOTFS),$(CURDIR)/bundles/busybox/rootfs)
CTRD_RUNTIME ?= $(CTRD_HUSK)

.PHONY: test-containerd ctrd-deps

# dpkg -s first: no apt-get at all when everything is there.
ctrd-deps:
	@missing=""; \
	for p in $(CTRD_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "containerd: installing:$$missing"; \
		$(CTRD_SUDO) apt-get update -q && \
		$(CTRD_SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# Uses the husk `make build` made (HUSK_BIN, exported by the top-level
# Makefile; static since main's 30a0ad4) and builds it when missing; fills
# the busybox rootfs when missing. `make test` builds both before this.
test-containerd: ctrd-deps
	@test -x "$(CTRD_HUSK)" || $(MAKE) --no-print-directory build
	@if [ ! -x "$(CTRD_ROOTFS)/bin/busybox" ]; then \
		$(CTRD_SUDO) bash bundles/busybox/prepare.sh; fi
	$(CTRD_SUDO) env HUSK_CTR_RUNTIME=$(CTRD_RUNTIME) HUSK_BUNDLE_ROOTFS=$(CTRD_ROOTFS) \
		bash integration/containerd.sh
