# make fuzz: each cargo-fuzz target for FUZZ_SECONDS (default 300) on the
# stable toolchain (-s none: no sanitizer, which needs nightly). Not part of
# make test. fuzz/Cargo.lock pins the same crates as the main build.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := spec_validate seccomp_compile

.PHONY: fuzz fuzz-deps
fuzz-deps:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

fuzz: fuzz-deps
	@set -e; cd fuzz; for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t; \
		seeds=""; [ -d seeds/$$t ] && seeds=seeds/$$t; \
		dict=""; [ $$t = seccomp_compile ] && dict=-dict=seccomp.dict; \
		echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
		cargo fuzz run -s none $$t corpus/$$t $$seeds -- -max_total_time=$(FUZZ_SECONDS) $$dict; \
	done
