# Vigil — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/vigil
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
DATA_DIR  ?= ./data

.PHONY: all build run test unit e2e fuzz bench vet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/vigil

## run: all-in-one on embedded storage in ./data
run: build
	$(BIN) all-in-one --data-dir $(DATA_DIR)

## test: vet, unit tests with the race detector, end-to-end tests with the built binary, a short fuzz pass
test: vet build
	$(GO) test -race -count=1 -timeout 20m ./...
	VIGIL_BINARY=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m -tags e2e ./e2e/...
	$(MAKE) fuzz FUZZTIME=5s

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (echo "gofmt needed on:"; gofmt -l .; exit 1)

FUZZTIME ?= 30s
fuzz:
	@$(GO) list -f '{{.Dir}}' ./... | while read dir; do \
		for f in $$(cd $$dir && $(GO) test -list 'Fuzz.*' . 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$f in $$dir"; \
			(cd $$dir && $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) .) || exit 1; \
		done; \
	done

## bench: micro-benchmarks (not part of make test)
bench:
	$(GO) test -run XXX -bench . -benchmem ./...

clean:
	rm -rf bin
