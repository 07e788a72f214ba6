# Vigil — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/vigil
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# -s -w: no symbol table nor DWARF (a third of the binary); stack traces and
# pprof keep function names and lines (pclntab stays). See docs/operations.md.
LDFLAGS   := -s -w -X main.version=$(VERSION)
DATA_DIR  ?= ./data

.PHONY: all build run test unit fuzz bench vet lint sdk-test clean dev-up dev-down

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
test: vet lint build
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

## lint: staticcheck and gosec on both modules (the root and sdk/), at pinned versions
## installed once from the Go module proxy into $(VIGIL_CACHE_DIR)/bin. Every suppression
## carries its reason: `//lint:ignore <check> <reason>` for staticcheck, `#nosec <rule> --
## <reason>` for gosec (both flags below make gosec refuse a bare #nosec). Rules excluded
## for a whole class of code are listed in GOSEC_EXCLUDE with the reason next to each.
##
## G115 (integer conversion may overflow) is off in three kinds of package, where each of
## its findings (120-odd of them) is one of the conversions below and none a bug; elsewhere
## each conversion carries its own #nosec.
## - The stores' binary codecs (binenc, logstore, spanstore, profilestore, dumpstore,
##   diskqueue): lengths and counts, never negative, written as uvarints or fixed-width
##   fields (binary.AppendUvarint(b, uint64(len(x))), uint32(len(payload))), and narrowing on
##   read of fields Vigil wrote from values of that width; lengths and indexes are checked
##   against the input or their table before use (`if v >= uint64(sg.n)` before uint32(v),
##   a length against the bytes left before int(n)), so a corrupt file gives an error or a
##   wrong value, never an access out of range. Every one of these packages has Fuzz targets.
## - The wire-format converters (otlptraces, otlplogs, lokipush, jaegerthrift, query/jaeger):
##   two's-complement reinterpretations that the formats define, Unix-nanosecond timestamps
##   and ids between int64 and uint64 (pcommon.Timestamp(s.StartTime), int64(d.Uint64())
##   for a fixed64 field, Jaeger's int64 span ids into [8]byte), and enum fields narrowed
##   as protobuf does.
## - Generators of benchmark and test data (bench, storage/profiletest): seeds and counters.
VIGIL_CACHE_DIR     ?= $(HOME)/.cache/vigil
LINT_BIN            := $(VIGIL_CACHE_DIR)/bin
STATICCHECK_VERSION := v0.8.2
GOSEC_VERSION       := v2.30.0
STATICCHECK         := $(LINT_BIN)/staticcheck-$(STATICCHECK_VERSION)
GOSEC               := $(LINT_BIN)/gosec-$(GOSEC_VERSION)
GOSEC_EXCLUDE       := -exclude-rules='/internal/(binenc|logstore|spanstore|profilestore|dumpstore|queue/diskqueue)/:G115;/internal/(otlptraces|otlplogs|lokipush|jaegerthrift)/:G115;/query/jaeger/:G115;/internal/(bench|storage/profiletest)/:G115'

lint: $(STATICCHECK) $(GOSEC)
	$(STATICCHECK) ./...
	cd sdk && $(STATICCHECK) ./...
	@# gosec walks into sdk/ from the root, loading it as the module it is: one run covers both
	$(GOSEC) -quiet -nosec-require-rules -nosec-require-justification $(GOSEC_EXCLUDE) ./...

$(STATICCHECK):
	mkdir -p $(LINT_BIN)
	GOBIN=$(LINT_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(LINT_BIN)/staticcheck $@

$(GOSEC):
	mkdir -p $(LINT_BIN)
	GOBIN=$(LINT_BIN) $(GO) install github.com/securego/gosec/v2/cmd/gosec@$(GOSEC_VERSION)
	mv $(LINT_BIN)/gosec $@

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
