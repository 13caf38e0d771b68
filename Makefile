# govgrid: `make demo` runs a local three-tier grid, `make test` runs every test.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin/govgrid
DEMO_DIR ?= demo-grid
BASE_PORT ?= 17000
# staticcheck runs with `go run`, fetched through the module proxy: it stays out of go.mod.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test test-short chaos demo bench lint proto image compose-trust clean

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

# The compose grid's trust, in deploy/trust (once): its CA, each node's certificate (with ca.key
# at the district's nodes) and key for encryption at rest, and the gossip key; owned by the
# image's user (65532), so run it as root or with sudo.
COMPOSE_NODES = cd-1 cd-2 cd-3 cd-dgdj-1 cd-dgdj-ngj-1 cd-dgdj-bgj-1
compose-trust: build
	@test ! -e deploy/trust/ca/ca.key || { echo "deploy/trust exists: remove it to make a new grid"; exit 1; }
	bin/govgrid tls ca create --grid $${GOVGRID_GRID:-chengdong} --dir deploy/trust/ca
	for n in $(COMPOSE_NODES); do \
		site=$${n%-*}; key=; case $$site in cd) key=--with-ca-key;; esac; \
		bin/govgrid tls cert create --ca-dir deploy/trust/ca --site $$site --node $$n $$key --out deploy/trust/$$n || exit 1; \
		bin/govgrid keygen encryption --out deploy/trust/$$n/encryption.key || exit 1; \
	done
	head -c 32 /dev/urandom | base64 > deploy/trust/gossip.key
	chown -R 65532:65532 deploy/trust

clean:
	rm -rf bin $(DEMO_DIR) bench-results.json
