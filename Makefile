# posture — build, test, demo. `make demo` runs the whole pipeline on the lab;
# `make test` runs every test (what CI runs).
GO      ?= go
BIN     := bin/posture
DEMODIR ?= demo-out
HOSTS   ?= 0
FUZZTIME ?= 20s
PKGS    := ./...

.PHONY: build test demo lint bench fuzz clean checks-md screenshots

# The binary is static (modernc's SQLite is pure Go), built as deploy/Dockerfile
# builds it, so `go test ./deploy` reuses this build's compiled packages.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w" -o $(BIN) ./cmd/posture

# The tests that scan with web.nuclei run bin/posture as the nuclei worker
# (one link of the 160 MB binary instead of one per test binary).
test: lint build
	POSTURE_NUCLEI_WORKER=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m $(PKGS)

demo: build
	./$(BIN) demo --dir $(DEMODIR) --hosts $(HOSTS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Benchmarks: a scan of a large lab, the resolver, the TLS prober.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -benchmem ./scanner/
	$(GO) test -run '^$$' -bench . -benchmem ./checks/... ./scanner/store/ ./reports/

# Short fuzzing sessions of every parser (the seeds also run in `make test`).
fuzz:
	@for t in $$(grep -rl '^func Fuzz' --include='*_test.go' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$t || exit 1; done; done

# The check tables of the README and docs/checks.md are generated from the
# catalogue: this rewrites them in place (a test fails when one is stale).
checks-md: build
	./$(BIN) checks --markdown > .checks.md.tmp
	for f in README.md docs/checks.md; do \
	  awk 'BEGIN { while ((getline l < ".checks.md.tmp") > 0) t = t l "\n" } \
	    /<!-- checks:begin/ { print; printf "%s", t; skip = 1; next } \
	    /<!-- checks:end -->/ { skip = 0 } !skip' $$f > $$f.tmp && mv $$f.tmp $$f; done
	rm -f .checks.md.tmp

# The README's screenshot of the board (docs/img/board.png), from the
# demo's second night, taken by headless Chromium.
screenshots: build
	POSTURE_SCREENSHOTS=1 POSTURE_NUCLEI_WORKER=$(CURDIR)/$(BIN) $(GO) test -count=1 -run '^TestBoardScreenshot$$' -v ./cmd/posture/

clean:
	rm -rf bin $(DEMODIR)
