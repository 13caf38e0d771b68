# govgrid: `make demo` runs a local three-tier grid, `make test` runs every test.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/govgrid
DEMO_DIR ?= demo-grid
BASE_PORT ?= 17000
# staticcheck runs with `go run`, fetched through the module proxy: it stays out of go.mod.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test test-short chaos demo bench lint proto image clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/govgrid

# Every test: unit, in-process grid, and end-to-end with the real binary, after vet, staticcheck
# and gofmt. The race detector is on: the project is all concurrency. bench/ is a module of its
# own (its dependencies stay out of the product's go.mod), which ./... does not reach: its vet
# and tests run on their own lines.
test:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) run $(STATICCHECK) ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) test -race -count=1 -timeout 12m ./...
	cd bench && $(GO) test -race -count=1 -timeout 10m ./...

test-short:
	$(GO) test -short -count=1 ./...
	cd bench && $(GO) test -short -count=1 ./...

# The robustness test of ./chaos run longer than in `make test` (40 s there): a grid under kills,
# partitions and message faults, with retrying clients, checked at the end. SEED repeats a
# schedule (empty: a random one); a failure prints its seed and the command that reruns it.
DURATION ?= 10m
SEED     ?=
chaos:
	GOVGRID_CHAOS_DURATION=$(DURATION) GOVGRID_CHAOS_SEED=$(SEED) $(GO) test -race -count=1 -timeout 0 -run '^TestChaos$$' -v ./chaos

demo: build
	$(BIN) demo --dir $(DEMO_DIR) --base-port $(BASE_PORT)

# The benchmark tables of the README: govgrid against etcd 3.4 and PostgreSQL 15, same run, then
# the in-process grid benchmarks (join, handoffs, feeds, convergence after a silent cut). BENCH
# adds flags, e.g. BENCH='--only converge --converge-quick' (see govgrid-bench -h).
BENCH ?=
bench: build
	cd bench && $(GO) run ./cmd/govgrid-bench --govgrid ../$(BIN) --json ../bench-results.json $(BENCH)

lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd bench && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || (gofmt -l . ; exit 1)

# Regenerates api/govgridpb from govgrid.proto (needs protoc; installs the Go plugins).
proto:
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) generate ./api/... ./sitestate/...

image: build
	docker build -f deploy/Dockerfile -t govgrid:$(VERSION) -t govgrid:latest .

clean:
	rm -rf bin $(DEMO_DIR) bench-results.json
