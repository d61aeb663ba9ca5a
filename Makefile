# One entry point for people and CI: `make demo` runs the product locally, `make test` runs the suite.
# Both install what they need first (a virtualenv in .venv, the pinned CDK CLI in node_modules).
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
# Node 20 is past its end of life for jsii (it supports 22 and 24); Node 20 still works, and this
# silences only that end-of-life banner, on Node 20 only (the README's Quickstart says so).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install test demo synth diff snapshot bench bench-organization bench-pacing bench-rotation fault-matrix

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml dev/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(PY) -m gitlab_key_rotation_dev.demo $(ARGS)

# Two pytest workers (pytest-xdist): the machines here have two cores.
test: install
	$(PY) -m pytest -n 2

synth: install
	cdk synth --quiet
	@echo "Template: $(CURDIR)/cdk.out/KeyRotationStack.template.json"

diff: install
	cdk diff

snapshot: install
	UPDATE_SNAPSHOT=1 $(PY) -m pytest -q tests/cdk/test_snapshot.py

# The revocation benchmark: this code against the usual weekly script, 1,000 and 5,000 users, on
# moto.server with 50 ms per IAM call, and under IAM rate limits of 20 and 50 calls/s (about 40
# minutes). ARGS="--help" lists the knobs.
bench: install
	$(PY) -m gitlab_key_rotation_dev.benchmarks.revocation $(ARGS)

# The revocation in organization mode: 20 accounts x 250 members at 50 ms per IAM call (a few minutes).
bench-organization: install
	$(PY) -m gitlab_key_rotation_dev.benchmarks.organization $(ARGS)

# The GitLab client with and without its rate budget against gitlab.com Free's 100 requests a
# minute, both 429 forms, on a fake clock (seconds).
bench-pacing: install
	$(PY) -m gitlab_key_rotation_dev.benchmarks.gitlab_pacing $(ARGS)

# One IAM user's key rotated into 1, 10 and 100 GitLab projects (a forced rotation, then a no-op
# run), and into 100 under a limit of 100 requests a minute: GitLab requests per target counted at
# the server, AWS calls, wall time, invariants (under a minute).
bench-rotation: install
	$(PY) -m gitlab_key_rotation_dev.benchmarks.rotation $(ARGS)

# The rotation's fault matrix: every external call of a clean rotation (IAM, STS, Secrets Manager,
# SNS, each GitLab request) broken at the wire in every mode, then clean re-runs (about a minute;
# no CDK CLI needed, so only the virtualenv is installed first).
# ARGS="--side gitlab" for one side, ARGS="--quick" for the test's smaller matrix.
fault-matrix: $(VENV)/.installed
	$(PY) -m gitlab_key_rotation_dev.fault_matrix $(ARGS)
