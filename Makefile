# Developer tasks for ec2-failover. Run `make` (or `make help`) for the list.
#
# Python tools (moto server, cfn-lint, cargo-lambda) live in a project-local
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

.PHONY: help venv test lint fmt clippy demo

help:
	@echo 'ec2-failover developer targets:'
	@echo '  make venv    create .venv with the pinned tools of requirements-dev.txt (moto, cfn-lint, cargo-lambda)'
	@echo '  make test    cargo fmt --check, clippy -D warnings, lint, then cargo test against a local moto server'
	@echo '  make lint    cfn-lint template.yaml'
	@echo '  make fmt     cargo fmt --all'
	@echo '  make clippy  cargo clippy --all-targets -- -D warnings'
	@echo '  make demo    build a Tokyo VPC in moto, fail the appliance over with the real function (scripts/demo.sh)'

venv: $(VENV_STAMP)

# Runs once, and again only when requirements-dev.txt changes.
$(VENV_STAMP): requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: venv
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	$(MAKE) lint
	MOTO_SERVER=$(VENV)/bin/moto_server cargo test

lint: venv
	$(VENV)/bin/cfn-lint template.yaml

fmt: venv
	cargo fmt --all

clippy: venv
	cargo clippy --all-targets -- -D warnings

demo: venv
	scripts/demo.sh
