# mailstack: `make lab` to get a running lab, `make test` for the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export VAGRANT_DEFAULT_PROVIDER ?= lxc
export VAGRANT_CHECKPOINT_DISABLE := 1
export VAGRANT_BOX_UPDATE_CHECK_DISABLE := 1
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: lab test unit lab-test deploy lab-down host venv hash-password

## host: Debian packages the operator machine needs (idempotent)
host: .lab/host-packages.stamp
.lab/host-packages.stamp: lab/install-host.sh
	lab/install-host.sh
	@mkdir -p .lab && touch $@

## venv: the pinned Python environment
venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt | host
	/usr/bin/python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

## lab: boot the lab (cleaning what an earlier lab left) and deploy mailstack to it
lab: venv
	$(PY) lab/labctl up
	$(PY) lab/labctl deploy
	$(PY) lab/labctl status

## deploy: deploy the lab again, then publish its DNS records. By hand:
##   .venv/bin/pyinfra -y inventory/lab.py deploy.py && .venv/bin/python -m mailstack publish inventory/lab.py
deploy: venv
	$(PY) lab/labctl deploy

## test: unit tests, then the lab scenarios (brings the lab up and deploys if needed)
test: unit lab-test

unit: venv
	$(VENV)/bin/pytest -q tests/unit

## lab-test: lab scenarios; one alone: make lab-test T=tests/lab/test_mail_flow.py
lab-test: venv
	$(PY) lab/labctl up
	$(PY) lab/labctl ensure-deployed
	$(VENV)/bin/pytest -q --durations=20 $(or $(T),tests/lab)

## lab-down: destroy the lab, remove its bridge, stop its apt proxy
lab-down: venv
	$(PY) lab/labctl down

## hash-password: print a password hash for a mailbox's password_hash field
hash-password: venv
	@$(PY) -m mailstack hash-password
