# `make bench`: the benchmarks in bench/ (service, SDK worker, template, scale-out, images); results land in
# docs/benchmarks.md.
# Included from the root Makefile. Subset: `make bench BENCH=service` (or sdk, template, a comma list).
# Shorter or longer: `make bench BENCH_ARGS="--duration 5 --runs 3 --sdk-runs 5 --template-runs 3"`.

BENCH      ?= all
BENCH_ARGS ?=

.PHONY: bench
bench: sync postgres bench-tools ## run the benchmarks (BENCH=all|service|sdk|template|scale|images), write docs/benchmarks.md
	BENCH=$(BENCH) $(UV) run python -m bench.run $(BENCH_ARGS)

# wrk drives the service benchmark; Debian ships it (the `wrk` package).
.PHONY: bench-tools
bench-tools: ## install wrk (Debian package) when it is missing
	@if ! command -v wrk >/dev/null; then \
	  if [ "$$(id -u)" != 0 ]; then echo "wrk missing: run 'sudo apt-get install wrk' (make bench needs it)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	fi
	@wrk --version | head -1 || true

# Instructions per request under valgrind's cachegrind: unlike wall-clock throughput, the machine's state
# cannot move it (bench/instructions.py). Debian ships valgrind.
.PHONY: bench-instructions
bench-instructions: sync postgres ## count CPU instructions per request (floor, register, session start, webhooks) under valgrind
	@if ! command -v valgrind >/dev/null; then \
	  if [ "$$(id -u)" != 0 ]; then echo "valgrind missing: run 'sudo apt-get install valgrind'"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; \
	fi
	$(UV) run python -m bench.instructions $(BENCH_ARGS)
