# Developer tasks for ec2-failover. Run `make` (or `make help`) for the list.
#
# Python tools (moto server, cfn-lint, cargo-lambda, zig, policy_sentry) live in a project-local
# virtual environment, .venv, built from requirements-dev.txt; nothing here relies
# on tools installed elsewhere except cargo/rustc (rustup) and python3.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
VENV_STAMP := $(VENV)/.installed
# The interpreter that creates the venv (only used while .venv does not exist yet,
# so it cannot resolve to .venv/bin/python3 itself).
PYTHON ?= python3

# .venv/bin first, so `cargo lambda` finds the venv's cargo-lambda as a cargo subcommand.
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: help venv test lint fmt clippy demo build deploy invoke preflight lambda-target bench

# The Lambda architecture of template.yaml (arm64 = Graviton).
LAMBDA_TARGET := aarch64-unknown-linux-gnu
LAMBDA_ZIP := target/lambda/ec2-failover/bootstrap.zip
# Sample payload for `make invoke`; the dry run is the safe default.
EVENT ?= events/manual-plan.json

help:
	@echo 'ec2-failover developer targets:'
	@echo '  make venv    create .venv with the pinned tools of requirements-dev.txt (moto, cfn-lint, cargo-lambda, zig, policy_sentry)'
	@echo '  make test    cargo fmt --check, build every target under clippy -D warnings (the venv installs beside it), cfn-lint, cargo test against moto'
	@echo '  make lint    cfn-lint template.yaml'
	@echo '  make fmt     cargo fmt --all'
	@echo '  make clippy  cargo clippy --all-targets -- -D warnings'
	@echo '  make demo    build a Tokyo VPC in moto, fail the appliance over with the real function (scripts/demo.sh);'
	@echo '                STANDBY=warm or hot keeps a standby ready first'
	@echo '  make build   release build for Lambda arm64 with cargo-lambda (zig): $(LAMBDA_ZIP), and its size'
	@echo '  make invoke  run the function locally (cargo lambda watch) and invoke it with EVENT=$(EVENT)'
	@echo '                (uses your AWS credentials and region unless AWS_ENDPOINT_URL is set)'
	@echo '  make preflight  run the function locally with {"action": "preflight"}: prove with DryRun calls'
	@echo '                that a failover would work in your account (changes nothing)'
	@echo '  make deploy  sam deploy --guided (needs the AWS SAM CLI and AWS credentials)'
	@echo '  make bench   release build under a Lambda Runtime API emulator: cold start, failover, RSS, AWS calls,'
	@echo '                time to recover per STANDBY mode (several minutes); writes BENCHMARKS.md'

venv: $(VENV_STAMP)

# Runs once, and again only when requirements-dev.txt changes.
$(VENV_STAMP): requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# `make test` lints while it builds: clippy-driver is rustc with clippy's lints, so
# as cargo's workspace wrapper it compiles our crates for the tests and lints them
# (every target, benches included) in one pass. A separate `cargo clippy` would
# type-check the whole AWS SDK a second time: 4 of CI's minutes on 2 cores.
# CLIPPY_ARGS is how cargo-clippy hands `-D warnings` to the driver (the toolchain
# is pinned); only workspace crates see it, so dependencies stay shared with a
# plain `cargo test`. Most integration tests wait on moto or on modelled AWS
# timings rather than on a core, so they run 6 at a time.
LINTED_BUILD := RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
TEST_THREADS ?= 6

# The build needs no Python tool, so on a fresh clone the venv installs (about a
# minute of downloads) beside it rather than before it.
test:
	cargo fmt --all -- --check
	$(MAKE) --no-print-directory venv & venv=$$!; \
	  $(LINTED_BUILD) cargo test --all-targets --no-run; \
	  wait $$venv || { echo 'error: make venv failed (see above)' >&2; exit 1; }
	$(MAKE) --no-print-directory lint
	$(LINTED_BUILD) MOTO_SERVER=$(VENV)/bin/moto_server POLICY_SENTRY_PYTHON=$(VENV)/bin/python RUST_TEST_THREADS=$(TEST_THREADS) cargo test

lint: venv
	$(VENV)/bin/cfn-lint template.yaml

fmt: venv
	cargo fmt --all

clippy: venv
	cargo clippy --all-targets -- -D warnings

# `make demo STANDBY=hot` (or warm) keeps a standby ready before the alarm.
STANDBY ?= cold
demo: venv
	DEMO_STANDBY=$(STANDBY) scripts/demo.sh

# Prints the zip's size and checks it holds an arm64 (ELF aarch64) `bootstrap`.
define CHECK_ZIP
import os, sys, zipfile
path = sys.argv[1]
with zipfile.ZipFile(path) as z:
    names = z.namelist()
    head = z.read("bootstrap")[:20] if "bootstrap" in names else b""
machine = int.from_bytes(head[18:20], "little") if head[:4] == b"\x7fELF" else None
if machine != 183:
    sys.exit(f"error: {path} holds {names}, not an ELF aarch64 bootstrap (e_machine={machine})")
size = os.path.getsize(path)
print(f"built {path}: {size} bytes ({size / 1048576:.1f} MiB), bootstrap for linux arm64")
endef
export CHECK_ZIP

# The release zip Lambda runs: cargo-lambda cross-compiles for arm64 with zig (the
# `ziglang` package of requirements-dev.txt), so no cross C toolchain is needed.
# The Rust standard library for the target comes from rustup (lambda-target).
# Not part of `make test`: a release build takes several minutes.
build: venv lambda-target
	cargo lambda build --release --arm64 --output-format zip --bin ec2-failover
	@test -f $(LAMBDA_ZIP) || { echo 'error: cargo lambda did not produce $(LAMBDA_ZIP)' >&2; exit 1; }
	@$(VENV)/bin/python -c "$$CHECK_ZIP" $(LAMBDA_ZIP)

# The Rust standard library for arm64 Linux, which the release build links against.
lambda-target:
	@if ! rustup target list --installed 2>/dev/null | grep -qx '$(LAMBDA_TARGET)'; then \
		echo 'adding the Rust target $(LAMBDA_TARGET) (rustup target add)'; \
		rustup target add $(LAMBDA_TARGET) || { \
			echo 'error: the Rust standard library for $(LAMBDA_TARGET) is missing and rustup could not add it;' >&2; \
			echo '       run `rustup target add $(LAMBDA_TARGET)` where rustup can download, then `make build` again' >&2; \
			exit 1; }; \
	fi

# Runs the function locally under `cargo lambda watch` and sends it EVENT. Its
# configuration comes from your environment or ENV_FILE; it calls AWS with your
# credentials and region unless AWS_ENDPOINT_URL is set. Start with the dry run
# (the default EVENT, events/manual-plan.json).
invoke: venv
	EVENT='$(EVENT)' scripts/invoke.sh

# The readiness checklist against your account (your credentials and region, the
# configuration from your environment or ENV_FILE): DryRun calls, no change.
preflight: venv
	EVENT=events/manual-preflight.json scripts/invoke.sh

# Builds with SAM (which runs cargo-lambda: rust-cargolambda is a SAM beta
# feature) and deploys with the guided prompts, which ask for every parameter
# of template.yaml and save the answers in samconfig.toml. Never run by tests.
deploy: venv lambda-target
	@command -v sam >/dev/null || { \
		echo 'make deploy needs the AWS SAM CLI (`sam`), which is not installed.' >&2; \
		echo 'Install it, e.g. `pipx install aws-sam-cli`, or `pip install aws-sam-cli` in a' >&2; \
		echo 'virtual environment of its own (not .venv: it brings ~40 packages and moves the' >&2; \
		echo 'boto3 and aws-sam-translator that moto and cfn-lint are pinned with), or AWS'"'"'s' >&2; \
		echo 'installer (AWS SAM developer guide, "Installing the AWS SAM CLI"); then' >&2; \
		echo 'run `make deploy` again with AWS credentials for the target account.' >&2; \
		exit 1; }
	sam build --beta-features
	sam deploy --guided

# The benchmark reports the size of the deployable arm64 zip when `make build`
# made one, else of the host release binary zipped the same way.
BENCH_ZIP := $(if $(wildcard $(LAMBDA_ZIP)),$(CURDIR)/$(LAMBDA_ZIP),$(CURDIR)/target/bench/bootstrap.zip)

# Release binary under a Lambda Runtime API emulator against moto (benches/failover.rs);
# writes BENCHMARKS.md and fails when a budget is missed. Its time-to-recover part
# waits for EC2's modelled start times (30 s per cold failover): several minutes.
bench: venv
	cargo build --release --bin ec2-failover
	mkdir -p target/bench
	$(VENV)/bin/python -c "import zipfile; z = zipfile.ZipFile('target/bench/bootstrap.zip', 'w', zipfile.ZIP_DEFLATED); z.write('target/release/ec2-failover', 'bootstrap'); z.close()"
	BENCH_ZIP=$(BENCH_ZIP) MOTO_SERVER=$(VENV)/bin/moto_server cargo bench --bench failover
