# Vigil — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/vigil
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# -s -w: no symbol table nor DWARF (a third of the binary); stack traces and
# pprof keep function names and lines (pclntab stays). See docs/operations.md.
LDFLAGS   := -s -w -X main.version=$(VERSION)
DATA_DIR  ?= ./data

.PHONY: all build run test unit fuzz bench vet sdk-test clean dev-up dev-down

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vigil

## run: all-in-one on embedded storage in ./data
run: build
	$(BIN) all-in-one --data-dir $(DATA_DIR)

## test: vet, unit and integration tests (race detector) against real Kafka and
## Elasticsearch started by deploy/local, then — one at a time, since they stop Kafka or
## Elasticsearch under whatever else runs — the outage tests, the spool's and the
## end-to-end ones on the built binary; a short fuzz pass
test: vet build
	deploy/local/deps.sh
	VIGIL_REQUIRE_SERVICES=1 $(MAKE) sdk-test
	deploy/local/services.sh up
	@set -e; trap 'deploy/local/services.sh down' EXIT; \
	eval "$$(deploy/local/services.sh env)"; export VIGIL_REQUIRE_SERVICES=1; \
	$(GO) test -race -count=1 -timeout 20m ./...; \
	export VIGIL_TEST_SERVICE_CONTROL=1; \
	$(GO) test -race -count=1 -timeout 10m -run '^TestKafka$$/^outage$$' ./collector/spool; \
	VIGIL_BINARY=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m -tags e2e ./e2e/...
	$(MAKE) fuzz FUZZTIME=50000x

## unit: the tests that need no services (integration tests skip)
unit:
	$(GO) test -race -count=1 ./...

## dev-up / dev-down: real Kafka and Elasticsearch on this machine for the distributed mode
dev-up:
	deploy/local/services.sh up
	@deploy/local/services.sh env

dev-down:
	deploy/local/services.sh down

## sdk-test: vet and race tests of the sdk module, which `go test ./...` at the root does
## not enter (its fuzz targets are in `make fuzz`)
sdk-test:
	cd sdk && $(GO) vet ./... && $(GO) test -race -count=1 ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed on:"; gofmt -l .; exit 1)

FUZZTIME ?= 30s
fuzz:
	@{ $(GO) list -f '{{.Dir}}' ./...; cd sdk && $(GO) list -f '{{.Dir}}' ./...; } | while read dir; do \
		for f in $$(cd $$dir && $(GO) test -list 'Fuzz.*' . 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$f in $$dir"; \
			(cd $$dir && timeout 600 $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1x .) || exit 1; \
		done; \
	done

## bench: micro-benchmarks (not part of make test)
bench:
	$(GO) test -run XXX -bench . -benchmem ./...

clean:
	rm -rf bin
