# The two commands a newcomer needs are `make run` and `make test`.

GO ?= go

.PHONY: run test lint fmt build bench

run: ## run the service against the local PostgreSQL
	$(GO) run ./cmd/minipay serve

test: lint ## vet, lint and the whole test suite against a real PostgreSQL
	$(GO) test -race -count=1 ./...

lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

build:
	$(GO) build -o bin/minipay ./cmd/minipay

bench: build ## every benchmark, results in docs/benchmarks.md
	./bin/minipay bench ledger
