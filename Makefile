# Thin human-facing wrapper around CMake. The real build is CMakeLists.txt.
BUILD      ?= build
TEST_BUILD ?= build-test
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 300

.PHONY: all deps build install run run-config demo-cert test deb bench fuzz soak format clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEG_WERROR=ON >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# cmake --install: PREFIX (default /usr/local) and DESTDIR as usual
# (docs/operations.md#installing).
PREFIX ?=
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX))

# Starts the demo upstream and the gateway in front of it (examples/demo.yaml).
# Ctrl-C stops both. Ports: make run PORT=8090 TLS_PORT=8453 ADMIN_PORT=8091 UPSTREAM_PORT=9010
# (other ports run a copy of the demo configuration, $(BUILD)/demo-run.yaml,
# whose key store is still examples/demo.db). The first run makes a
# self-signed certificate for the HTTPS listener (examples/demo-tls/, not in git).
PORT          ?= 8080
TLS_PORT      ?= 8443
ADMIN_PORT    ?= 8081
UPSTREAM_PORT ?= 9000
RUN_CONFIG = $(if $(filter 8080:8443:8081:9000,$(PORT):$(TLS_PORT):$(ADMIN_PORT):$(UPSTREAM_PORT)),examples/demo.yaml,$(BUILD)/demo-run.yaml)
run: build run-config
	@echo "errgate: demo upstream on 127.0.0.1:$(UPSTREAM_PORT), gateway on 127.0.0.1:$(PORT) (HTTPS on $(TLS_PORT)), admin on 127.0.0.1:$(ADMIN_PORT) ($(RUN_CONFIG))"
	@echo "errgate: try  curl -i http://127.0.0.1:$(PORT)/v1/hello  or  curl -ik https://127.0.0.1:$(TLS_PORT)/v1/hello  (see README.md)"
	@./$(BUILD)/errgate demo-upstream --listen 127.0.0.1:$(UPSTREAM_PORT) & up=$$!; \
	  trap 'kill $$up 2>/dev/null' EXIT INT TERM; \
	  ./$(BUILD)/errgate serve --config $(RUN_CONFIG)

# the demo's HTTPS listener's self-signed certificate, made once
demo-cert:
	@[ -f examples/demo-tls/key.pem ] || { mkdir -p examples/demo-tls && \
	  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
	    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	    -keyout examples/demo-tls/key.pem -out examples/demo-tls/cert.pem 2>/dev/null && \
	  echo "errgate: made a self-signed certificate for the demo's HTTPS listener (examples/demo-tls/)"; }

run-config: demo-cert
	@mkdir -p $(BUILD)
	@sed -e 's/127\.0\.0\.1:8080/127.0.0.1:$(PORT)/' -e 's/127\.0\.0\.1:8443/127.0.0.1:$(TLS_PORT)/' \
	  -e 's/127\.0\.0\.1:8081/127.0.0.1:$(ADMIN_PORT)/' -e 's#demo-tls/#$(CURDIR)/examples/demo-tls/#g' \
	  -e 's/127\.0\.0\.1:9000/127.0.0.1:$(UPSTREAM_PORT)/' -e 's#path: demo\.db#path: $(CURDIR)/examples/demo.db#' \
	  examples/demo.yaml > $(BUILD)/demo-run.yaml

# A Debian package (errgate_VERSION_ARCH.deb in $(DEB_BUILD)): a release build
# for prefix /usr with the unit, logrotate, man pages (cmake/package.cmake).
DEB_BUILD ?= build-deb
deb: deps
	cmake -S . -B $(DEB_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DEG_WERROR=ON >/dev/null
	cmake --build $(DEB_BUILD) -j $(JOBS)
	cd $(DEB_BUILD) && cpack -G DEB

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
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD) $(BENCH_BUILD) $(DEB_BUILD)
