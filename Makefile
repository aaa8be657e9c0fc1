# The two commands a newcomer needs are `make run` and `make test`.

GO ?= go

.PHONY: run test lint fmt build bench

run: ## run the service against the local PostgreSQL
	$(GO) run ./cmd/minipay serve

test: lint ha-check citus-check ## vet, lint and the whole test suite against a real PostgreSQL
	$(GO) test -race -count=1 ./...
	cd sdk/go && $(GO) test -race -count=1 ./...
	$(MAKE) openapi-lint api-types-check sdk-test sdk-pack e2e console-test console-e2e

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./... github.com/minipay/minipay/sdk/go/...
	$(GO) tool staticcheck ./... github.com/minipay/minipay/sdk/go/...

fmt:
	gofmt -w $$(git ls-files '*.go')

build:
	$(GO) build -o bin/minipay ./cmd/minipay

bench: build ## every benchmark, results in docs/benchmarks.md
	./bin/minipay bench all

# Faults under load (chaos/): serve replicas killed, PostgreSQL restarted,
# the webhook receiver down for a while, directly and through PgBouncer in
# transaction pooling mode; and pg_auto_failover promoting the secondary
# when the primary's PostgreSQL, then its whole node, is killed. Each checks
# that nothing acknowledged was lost or duplicated and that the history of
# ledger operations is linearizable (Porcupine). make test runs them for
# 20s each; this runs them for CHAOS_DURATION and prints the reports, which
# also go to CHAOS_REPORT_DIR (default: minipay-chaos in the temporary
# directory), with Porcupine's visualization of any history that is not
# linearizable.
CHAOS_DURATION ?= 2m
.PHONY: chaos
chaos:
	CHAOS_DURATION=$(CHAOS_DURATION) $(GO) test -count=1 -v -run 'TestChaos|TestFailover' -timeout 30m ./chaos

# The failover and pooler tests (chaos/, internal/pgcluster, internal/pgdb,
# settlement) run Debian's pg_auto_failover and PgBouncer. Without them those
# tests are skipped with NOT RUN (go test -v shows it; this line says it in
# make test too), unless MINIPAY_REQUIRE_HA=1 (CI installs them and sets it),
# which makes them fail.
PGVERSION = $(shell ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)
.PHONY: ha-check
ha-check:
	@command -v pg_autoctl >/dev/null && test -f /usr/lib/postgresql/$(PGVERSION)/lib/pgautofailover.so || \
		echo "failover tests: NOT RUN: no pg_auto_failover (apt-get install -y postgresql-$(PGVERSION)-auto-failover pg-auto-failover-cli)" >&2
	@command -v pgbouncer >/dev/null || test -x /usr/sbin/pgbouncer || \
		echo "PgBouncer tests: NOT RUN: no pgbouncer (apt-get install -y pgbouncer)" >&2

# The Citus tests (TestOnCitus of ledger, settlement, api, webhooks,
# console and internal/idempotency on a coordinator and two workers, the
# citus package's plan, internal/pgcluster, and cmd/minipay's outbox across
# a SIGKILL and rebalance under load) need the citus extension, built from
# source (docs/scaling.md; CI builds it first). Without it they are
# skipped with NOT RUN, unless MINIPAY_REQUIRE_CITUS=1 (CI).
.PHONY: citus-check
citus-check:
	@test -f /usr/lib/postgresql/$(PGVERSION)/lib/citus.so || \
		echo "Citus tests: NOT RUN: no Citus extension for PostgreSQL $(PGVERSION) (see docs/scaling.md)" >&2

# The JS SDK (sdk/js): its tests run the real binary against PostgreSQL. e2e
# drives "minipay dev" in headless Chromium (apt-get install -y chromium);
# without Chromium it says so and passes, unless MINIPAY_REQUIRE_BROWSER=1
# (CI). screenshots rewrites docs/img.
NPM ?= npm
.PHONY: sdk-test e2e screenshots openapi-lint api-types api-types-check sdk-pack
sdk/js/node_modules/.package-lock.json: sdk/js/package-lock.json
	cd sdk/js && $(NPM) ci --no-audit --no-fund
sdk-test: sdk/js/node_modules/.package-lock.json
	cd sdk/js && $(NPM) test

# docs/openapi.yaml against redocly's recommended rules (redocly.yaml;
# reasoned exceptions in .redocly.lint-ignore.yaml). After changing the
# document, "make api-types" regenerates the JS SDK's types from it;
# api-types-check fails when they were not regenerated.
openapi-lint: sdk/js/node_modules/.package-lock.json
	sdk/js/node_modules/.bin/redocly lint docs/openapi.yaml
api-types: sdk/js/node_modules/.package-lock.json
	cd sdk/js && $(NPM) run --silent gen:types
api-types-check: sdk/js/node_modules/.package-lock.json
	cd sdk/js && $(NPM) run --silent check:types

# The JS SDK as users get it: npm pack, installed into a scratch project,
# run from Node and type-checked.
sdk-pack: sdk/js/node_modules/.package-lock.json
	cd sdk/js && $(NPM) run --silent smoke:pack
e2e: sdk/js/node_modules/.package-lock.json
	@if [ -x "$${CHROMIUM:-/usr/bin/chromium}" ]; then cd sdk/js && $(NPM) run e2e; \
	elif [ "$$MINIPAY_REQUIRE_BROWSER" = 1 ]; then echo "e2e: no Chromium; apt-get install -y chromium" >&2; exit 1; \
	else echo "e2e: NOT RUN: no Chromium at $${CHROMIUM:-/usr/bin/chromium} (apt-get install -y chromium)" >&2; fi
screenshots: sdk/js/node_modules/.package-lock.json console/web/node_modules/.package-lock.json
	cd sdk/js && MINIPAY_SCREENSHOTS=$(CURDIR)/docs/img $(NPM) run e2e
	cd console/web && MINIPAY_SCREENSHOTS=$(CURDIR)/docs/img $(NPM) run e2e

# The console's script (console/web: uPlot bundled with esbuild into
# console/static/chart.js, committed and embedded in the binary) and its
# browser test. console-test checks the committed bundle is the build of
# its source; "make console-bundle" rebuilds it.
.PHONY: console-test console-e2e console-bundle
console/web/node_modules/.package-lock.json: console/web/package-lock.json
	cd console/web && $(NPM) ci --no-audit --no-fund
console-test: console/web/node_modules/.package-lock.json
	cd console/web && $(NPM) test
console-bundle: console/web/node_modules/.package-lock.json
	cd console/web && $(NPM) run bundle
console-e2e: console/web/node_modules/.package-lock.json
	@if [ -x "$${CHROMIUM:-/usr/bin/chromium}" ]; then cd console/web && $(NPM) run e2e; \
	elif [ "$$MINIPAY_REQUIRE_BROWSER" = 1 ]; then echo "console-e2e: no Chromium; apt-get install -y chromium" >&2; exit 1; \
	else echo "console-e2e: NOT RUN: no Chromium at $${CHROMIUM:-/usr/bin/chromium} (apt-get install -y chromium)" >&2; fi

# Fuzzing: every Fuzz target of FUZZPKGS for FUZZTIME each (CI runs a short
# form, as a count of executions). A failing input is written to the
# package's testdata/fuzz; keep it. A bare "context deadline exceeded" with
# no failing input, right at the end of a timed run, is Go 1.26's fuzzing
# coordinator (go.dev/issue/75804), not a finding.
FUZZTIME ?= 10s
FUZZPKGS ?= ./api ./ledger ./internal/idempotency ./sdk/go/minipay
.PHONY: fuzz
fuzz:
	@set -e; for pkg in $(FUZZPKGS); do \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$pkg/*_test.go); do \
			echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done
