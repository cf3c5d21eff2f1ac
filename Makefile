# Entry points. Each target does its own set-up on a fresh machine (virtualenv, the Pulumi toolchain:
# an official pulumi >= v3.274.1 on PATH, else built from the Go module proxy and cached in ~/.cache/datapipe-toolchain).
SHELL := /bin/bash
.DEFAULT_GOAL := help
TOOLCHAIN_ENV = source "$$(bash scripts/toolchain.sh --print-env-file)"
# PostgreSQL (apt), Kafka/Connect 3.9.1, Debezium and Spark (Maven Central), SeaweedFS (Go module
# proxy) for the real-service tests (tests/services/).
SERVICES_ENV = source "$$(bash scripts/services.sh --print-env-file)"

# Extra pulumi arguments for up/preview/output/destroy, e.g. make output ARGS=--show-secrets
ARGS ?=

# The control plane (kube-apiserver, controller-manager, scheduler, etcd, kwok; Go module proxy) for
# the `cluster` stack and tests/cluster/.
CONTROLPLANE_ENV = source "$$(bash scripts/controlplane.sh --print-env-file)"

.PHONY: help up preview output destroy apply up-cluster destroy-cluster stop-clusters test test-fast bench toolchain services controlplane venv

help:
	@echo "make up        render the whole platform on the local stack (real pulumi up with the policy pack, no cluster/cloud)"
	@echo "make preview   preview the local stack with the policy pack"
	@echo "make output    the local stack's outputs (secrets hidden; make output ARGS=--show-secrets shows them)"
	@echo "make destroy   destroy the local stack (removes rendered/)"
	@echo "make apply     kubectl-apply rendered/ to the Kind clusters, Namespaces first (scripts/apply_rendered.sh)"
	@echo "make up-cluster     start two local API servers (scripts/clusters.sh, no Docker) and pulumi up the cluster stack on them"
	@echo "make destroy-cluster  pulumi destroy the cluster stack (the clusters keep running)"
	@echo "make stop-clusters  stop the local API servers (their state is deleted)"
	@echo "make test      every test, including the real-engine ones (what CI runs)"
	@echo "make test-fast the tests that need no Pulumi engine and no real services (seconds)"
	@echo "make bench     preview/up/policy-pack times of the local stack; CDC and Spark/Iceberg throughput of the real services"

up:
	@bash scripts/local_stack.sh up $(ARGS)

preview:
	@bash scripts/local_stack.sh preview $(ARGS)

output:
	@bash scripts/local_stack.sh output $(ARGS)

destroy:
	@bash scripts/local_stack.sh destroy $(ARGS)

apply:
	@bash scripts/apply_rendered.sh

up-cluster:
	@bash scripts/clusters.sh start >/dev/null && DATAPIPE_STACK=cluster bash scripts/local_stack.sh up $(ARGS)

destroy-cluster:
	@DATAPIPE_STACK=cluster bash scripts/local_stack.sh destroy $(ARGS)

stop-clusters:
	@bash scripts/clusters.sh stop

venv:
	@bash scripts/setup_venv.sh

toolchain:
	bash scripts/toolchain.sh

services:
	bash scripts/services.sh

controlplane:
	bash scripts/controlplane.sh

ACTIONLINT_BIN = $${DATAPIPE_TOOLCHAIN_CACHE:-$$HOME/.cache/datapipe-toolchain}/bin/actionlint
KUBE_SCORE_VERSION = v1.20.0
KUBE_SCORE_BIN = $${DATAPIPE_TOOLCHAIN_CACHE:-$$HOME/.cache/datapipe-toolchain}/kube-score-$(KUBE_SCORE_VERSION)/kube-score
# checkov in a virtualenv of its own: its many pinned dependencies stay out of the project's.
CHECKOV_VERSION = 3.3.30
CHECKOV_VENV = $${DATAPIPE_TOOLCHAIN_CACHE:-$$HOME/.cache/datapipe-toolchain}/checkov-$(CHECKOV_VERSION)

# actionlint checks the pull-request workflow (tests/policy/test_policy_workflow.py); kube-score scores the
# rendered manifests, and so does checkov (tests/engine/test_local_stack.py; findings accepted in
# tests/engine/kube-score-allowlist.yaml and checkov-allowlist.yaml).
test: venv
	@[ -x "$(ACTIONLINT_BIN)" ] || GOBIN="$$(dirname "$(ACTIONLINT_BIN)")" go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
	@[ -x "$(KUBE_SCORE_BIN)" ] || GOBIN="$$(dirname "$(KUBE_SCORE_BIN)")" go install github.com/zegl/kube-score/cmd/kube-score@$(KUBE_SCORE_VERSION)
	@[ -x "$(CHECKOV_VENV)/bin/checkov" ] || { rm -rf "$(CHECKOV_VENV)" && python3 -m venv "$(CHECKOV_VENV)" && "$(CHECKOV_VENV)/bin/pip" install -q "checkov==$(CHECKOV_VERSION)"; }
	$(TOOLCHAIN_ENV) && $(SERVICES_ENV) && $(CONTROLPLANE_ENV) && ACTIONLINT="$(ACTIONLINT_BIN)" KUBE_SCORE="$(KUBE_SCORE_BIN)" CHECKOV="$(CHECKOV_VENV)/bin/checkov" .venv/bin/python -m pytest -ra

test-fast: venv
	.venv/bin/python -m pytest -ra -m "not engine and not services and not cluster"

bench: venv
	$(TOOLCHAIN_ENV) && .venv/bin/python scripts/bench_engine.py
	$(SERVICES_ENV) && .venv/bin/python scripts/bench_cdc.py
	$(SERVICES_ENV) && .venv/bin/python scripts/bench_batch.py
