# make bench        husk vs crun vs runc (integration/bench/bench.py), ~1-2 min
# make bench-quick  a smoke run of the same
# BENCH_ARGS="--rounds 30" passes flags to the harness.
#
# Self-contained: works included from the top-level Makefile or alone
# (make -f mk/bench.mk bench).  Names are bench-prefixed to stay clear of it.

BENCH_ARGS  ?=
BENCH_CARGO := $(or $(CARGO),cargo)
BENCH_SUDO  := $(if $(filter 0,$(shell id -u)),,sudo)
BENCH_PKGS  := runc crun busybox-static

.PHONY: bench bench-quick bench-deps

# dpkg -s first: no apt-get at all when everything is there.
bench-deps:
	@missing=""; \
	for p in $(BENCH_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "bench: installing:$$missing"; \
		$(BENCH_SUDO) apt-get update -q && \
		$(BENCH_SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The bundle's rootfs comes from bundles/busybox/prepare.sh when the tree has
# it; without it the harness builds its own from busybox-static.
bench: bench-deps
	$(BENCH_CARGO) build --release --bin husk
	@if [ -f bundles/busybox/prepare.sh ]; then $(BENCH_SUDO) bash bundles/busybox/prepare.sh; fi
	@mkdir -p target/bench
	@bash -o pipefail -c "$(BENCH_SUDO) python3 integration/bench/bench.py $(BENCH_ARGS) \
		| tee target/bench/last.txt"

bench-quick: BENCH_ARGS += --quick
bench-quick: bench
