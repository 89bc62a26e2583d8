# Thin human-facing wrapper around CMake. The real build is CMakeLists.txt.
BUILD      ?= build
TEST_BUILD ?= build-test
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 300

.PHONY: all deps build run test bench fuzz soak format clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEG_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Starts the demo upstream and the gateway in front of it (examples/demo.yaml).
# The first run makes a self-signed certificate for the HTTPS listener
# (examples/demo-tls/, not in git). Ctrl-C stops both.
run: build
	@echo "errgate: demo upstream on 127.0.0.1:9000, gateway on 127.0.0.1:8080 (HTTPS on 8443), admin on 127.0.0.1:8081"
	@echo "errgate: try  curl -i http://127.0.0.1:8080/v1/hello  or  curl -ik https://127.0.0.1:8443/v1/hello  (see README.md)"
	@[ -f examples/demo-tls/key.pem ] || { mkdir -p examples/demo-tls && \
	  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
	    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	    -keyout examples/demo-tls/key.pem -out examples/demo-tls/cert.pem 2>/dev/null && \
	  echo "errgate: made a self-signed certificate for the demo's HTTPS listener (examples/demo-tls/)"; }
	@./$(BUILD)/errgate demo-upstream --listen 127.0.0.1:9000 & up=$$!; \
	  trap 'kill $$up 2>/dev/null' EXIT INT TERM; \
	  ./$(BUILD)/errgate serve --config examples/demo.yaml

# Sanitized build (ASan + UBSan) with clang so the libFuzzer harnesses build too;
# every test, including a short fuzz run, goes through ctest.
test: deps
	./scripts/deps.sh --test
	CC=clang cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DEG_SANITIZE=ON \
	  -DEG_FUZZ=ON -DEG_WERROR=ON >/dev/null
	cmake --build $(TEST_BUILD) -j $(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

# Benchmarks print figures; they are never timed assertions. A Release build
# of its own, so numbers never come from an unoptimised or sanitized binary.
BENCH_BUILD ?= build-rel
bench: deps
	./scripts/deps.sh --bench
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BENCH_BUILD) -j $(JOBS)
	./$(BENCH_BUILD)/bench_render
	./$(BENCH_BUILD)/bench_jsonr
	./$(BENCH_BUILD)/bench_http1
	./$(BENCH_BUILD)/bench_access
	bench/proxy.sh $(BENCH_BUILD)

fuzz: deps
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEG_SANITIZE=ON \
	  -DEG_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@for f in $(FUZZ_BUILD)/fuzz_*; do \
	  name=$$(basename $$f); mkdir -p $(FUZZ_BUILD)/corpus-$$name; \
	  echo "== $$name for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) $(FUZZ_BUILD)/corpus-$$name tests/fuzz/corpus || exit 1; \
	done

# Soak test (not part of `make test`): SOAK_MINUTES of mixed traffic with
# faults against a RelWithDebInfo build, then checks RSS, descriptors and
# counts (tests/soak/soak.py, docs/operations.md#soak-test).
SOAK_BUILD   ?= build-soak
SOAK_MINUTES ?= 30
soak: deps
	cmake -S . -B $(SOAK_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(SOAK_BUILD) -j $(JOBS) --target errgate_cli
	/usr/bin/python3 tests/soak/soak.py --bin $(SOAK_BUILD)/errgate --minutes $(SOAK_MINUTES)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD) $(BENCH_BUILD)
