# threatpipe developer entry points. `make run` and `make test` are the two set-up commands.
SHELL := /bin/bash
GO ?= go
BIN := bin/threatpipe
ARTIFACTS ?= $(CURDIR)/test-artifacts
FUZZTIME ?= 1m
SERVICES := scripts/services.sh
KUBE := scripts/kube.sh
# Real services for tests: the ones scripts/services.sh starts (or reuses when already up).
TEST_ENV := THREATPIPE_TEST_KAFKA_BROKERS=127.0.0.1:$${THREATPIPE_KAFKA_PORT:-9092} \
	THREATPIPE_TEST_REDIS_ADDR=127.0.0.1:$${THREATPIPE_REDIS_PORT:-6379} \
	THREATPIPE_TEST_REQUIRE_SERVICES=1 THREATPIPE_TEST_REQUIRE_SECURE_SERVICES=1 THREATPIPE_TEST_ARTIFACTS=$(ARTIFACTS) \
	THREATPIPE_TEST_REQUIRE_REDIS_TOPOLOGIES=1 THREATPIPE_TEST_REQUIRE_KUBE=1 \
	THREATPIPE_TEST_REQUIRE_BROWSER=$$(command -v chromium >/dev/null && echo 1)

.PHONY: all build run run-local test test-unit bench fuzz lint services-up services-down services-status \
	services-secure-up services-secure-down services-secure-status services-topologies-up services-topologies-down kube-up kube-down kube-status gen-kustomize clean

all: build

build: ## compile bin/threatpipe
	$(GO) build -trimpath -o $(BIN) ./cmd/threatpipe

run: build ## the whole pipeline on embedded Kafka, Redis and providers, with demo traffic and the view
	$(BIN) demo $(RUN_FLAGS)

run-local: build services-up ## the simulator and the enricher on the real local Kafka and Redis (scripts/services.sh)
	scripts/run-local.sh

# The secured pair's addresses, CA and credentials reach the tests as THREATPIPE_TEST_SECURE_*.
test: services-up services-secure-up services-topologies-up kube-up ## every test: unit, fuzz seed corpora, integration on real Kafka and Redis (plain, secured, Cluster, Sentinel), deployments dry-run on a real kube-apiserver
	@scripts/install-nft.sh
	@scripts/install-chromium.sh
	@rm -rf $(ARTIFACTS) && mkdir -p $(ARTIFACTS)
	@# The real STIX/TAXII clients from PyPI (taxii2-client, stix2-validator, stix2), in a cached venv.
	stix_python="$$(scripts/stix-venv.sh)" && \
	eval "$$($(SERVICES) env-secure --test)" && eval "$$($(SERVICES) env-cluster)" && eval "$$($(SERVICES) env-sentinel)" && \
		eval "$$($(KUBE) env)" && \
		THREATPIPE_TEST_STIX_PYTHON="$$stix_python" THREATPIPE_TEST_REQUIRE_STIX=1 \
		$(TEST_ENV) $(GO) test -race -shuffle=on -count=1 -timeout 12m -skip '^TestE2EChaos$$' ./...
	@# The chaos suite's bounded cases alone: its load and outages are timed, so not beside other packages.
	$(TEST_ENV) $(GO) test -count=1 -timeout 10m -run '^TestE2EChaos$$' ./cmd/threatpipe
	@if ls $(ARTIFACTS)/*.txt >/dev/null 2>&1; then echo "--- test reports ($(ARTIFACTS))"; cat $(ARTIFACTS)/*.txt; fi

test-unit: ## fast tests only: no Kafka or Redis needed (integration tests skip)
	$(GO) test -race -short -count=1 ./...

BENCH_FLAGS ?=
bench: build services-up ## benchmarks on the real broker (not part of make test); results in bench/results/
	$(GO) build -trimpath -o bin/tpbench ./cmd/tpbench
	bin/tpbench $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./pipeline/... ./enrich/...

# The chaos suite at full scale (docs/reliability.md): its own Kafka and Redis on other ports
# (scripts/services.sh), 60 s Redis outages, provider stalls; about 15 minutes. make test runs its
# bounded cases. The table is printed whether the cases pass or not.
.PHONY: chaos
chaos: services-up ## the chaos suite at full scale; prints the reliability table (docs/reliability.md)
	@mkdir -p $(ARTIFACTS) && rm -rf $(ARTIFACTS)/chaos*
	@status=0; THREATPIPE_TEST_CHAOS=full $(TEST_ENV) $(GO) test -count=1 -run '^TestE2EChaos$$' -timeout 45m ./cmd/threatpipe || status=$$?; \
		echo "--- chaos reports ($(ARTIFACTS))"; cat $(ARTIFACTS)/chaos-*.txt 2>/dev/null; \
		echo; cat $(ARTIFACTS)/chaos.md 2>/dev/null; exit $$status

# Every Fuzz* function in the repository, found afresh each run so that none is forgotten.
fuzz: ## run every fuzz target for FUZZTIME each (default 1m)
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		for n in $$(grep -o '^func Fuzz[A-Za-z0-9_]*' $$f | cut -d' ' -f2); do \
			echo "fuzz $$n in $$(dirname $$f) ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$n$$" -fuzztime $(FUZZTIME) "$$(dirname $$f)"; \
		done; \
	done

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

services-up: ## install (first time) and start real Kafka and Redis; reuses running ones
	$(SERVICES) up

services-down: ## stop the services this project started
	$(SERVICES) down

services-status:
	$(SERVICES) status

services-secure-up: ## start the secured Kafka (SASL_SSL, SCRAM-SHA-512) and Redis (TLS, ACL user) beside the plain ones
	$(SERVICES) up-secure

services-secure-down: ## stop the secured pair and remove its certificates, passwords and data
	$(SERVICES) down-secure

services-secure-status:
	$(SERVICES) status-secure

services-topologies-up: ## start a 3-master Redis Cluster and a Sentinel-managed primary and replica beside the plain Redis
	$(SERVICES) up-cluster
	$(SERVICES) up-sentinel

services-topologies-down:
	$(SERVICES) down-cluster
	$(SERVICES) down-sentinel

kube-up: ## build (first time: 5-10 min, cached in ~/.cache/threatpipe) and start a local kube-apiserver and etcd with the KEDA and Prometheus Operator CRDs; reuses a running one
	$(KUBE) up

kube-down: ## stop the local API server and etcd; remove their state
	$(KUBE) down

kube-status:
	$(KUBE) status

gen-kustomize: ## re-render deployments/kubernetes/{base,overlays} from the Helm chart
	scripts/gen-kustomize.sh

clean:
	rm -rf bin $(ARTIFACTS)
