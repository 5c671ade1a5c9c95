# Phonon — native targets (the earlier service ran these through Docker).
#   make run    installs what is missing, builds, serves on :8080
#   make test   installs, builds, runs every test (a private MariaDB included)
#               and each fuzz target for 20 s
#   make fuzz   builds the libFuzzer targets (clang) and runs each for
#               FUZZ_SECONDS (tests/fuzz/README.md)
#   make test-sanitize  phonon and the unit tests built with ASan + UBSan;
#               the unit tests and the integration suite (the normal
#               build's driver) run against them

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
DATA_DIR ?= ./data

.PHONY: setup build run run-scratch clean test unit-test integration-test bench compose-up compose-down fuzz test-sanitize

setup:
	./scripts/setup.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: setup $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Foreground; Ctrl-C stops it. Settings: config/phonon.yaml, APP_* variables.
run: build
	./$(BUILD_DIR)/phonon serve --data-dir $(DATA_DIR)

# Wipes the local data (recordings, database), rebuilds and runs.
run-scratch:
	rm -rf $(DATA_DIR)
	cmake --build $(BUILD_DIR) --target clean 2>/dev/null || true
	$(MAKE) run

clean:
	rm -rf $(BUILD_DIR)

# npm-ci.sh: the pinned npm packages the browser tests and the OpenAPI lint
# use (a no-op when node_modules already matches package-lock.json).
# The fuzz targets (label fuzz: one process and one core each) run two at a
# time after the rest, which runs one test at a time (the integration
# suites start servers, browsers and databases of their own).
test: build
	./scripts/npm-ci.sh
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 1200 -LE fuzz
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 1200 -L fuzz -j 2

unit-test: build
	./$(BUILD_DIR)/phonon_unit_tests

integration-test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -R integration

# The clang/libFuzzer configuration; `make test` builds the same folder
# (ctest's fuzz_build) and runs each target for 20 s.
FUZZ_BUILD_DIR ?= $(BUILD_DIR)/fuzz
FUZZ_SECONDS ?= 60

fuzz: setup
	JOBS=$(JOBS) tests/fuzz/build.sh $(FUZZ_BUILD_DIR)
	tests/fuzz/run.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS)

# The libraries, phonon and the unit tests with ASan + UBSan, then the unit
# and SQLite integration suites (SANITIZE_TESTS, a ctest -R pattern).
# ASan/LSan reports go to files so that one from a `phonon` child process,
# which a test may survive, still fails the run; all are printed. (UBSan
# ignores log_path when it runs beside ASan: its reports stay on stderr,
# i.e. in the test output or in the phonon log tail a failing integration
# test prints, and halt_on_error makes the process with the finding stop.)
SANITIZE_BUILD_DIR ?= build-sanitize
SANITIZE_TESTS ?= ^(unit|integration_sqlite)$$
SANITIZE_LOGS = $(abspath $(SANITIZE_BUILD_DIR))/sanitizer-logs
# detect_leaks: LeakSanitizer at every exit of an instrumented process.
# halt_on_error / abort: the first finding ends the process.
SANITIZE_ASAN_OPTIONS ?= detect_leaks=1:halt_on_error=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=0:log_path=$(SANITIZE_LOGS)/asan
SANITIZE_UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1:suppressions=$(abspath tests/sanitize/ubsan.supp)

$(SANITIZE_BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(SANITIZE_BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DPHONON_SANITIZE=ON \
	  -DPHONON_INTEGRATION_DRIVER=$(abspath $(BUILD_DIR))/phonon_integration_tests

# The integration driver is the normal build's (it only talks to `phonon`
# over sockets); `phonon` and the unit tests are instrumented.
test-sanitize: setup $(BUILD_DIR)/CMakeCache.txt $(SANITIZE_BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS) --target phonon_integration_tests
	cmake --build $(SANITIZE_BUILD_DIR) -j $(JOBS) \
	  --target phonon phonon_unit_tests
	rm -rf $(SANITIZE_LOGS) && mkdir -p $(SANITIZE_LOGS)
	cd $(SANITIZE_BUILD_DIR) && ASAN_OPTIONS='$(SANITIZE_ASAN_OPTIONS)' \
	  UBSAN_OPTIONS='$(SANITIZE_UBSAN_OPTIONS)' \
	  ctest --output-on-failure --timeout 2400 -R '$(SANITIZE_TESTS)'; \
	  status=$$?; \
	  if [ -n "$$(ls -A $(SANITIZE_LOGS))" ]; then \
	    cat $(SANITIZE_LOGS)/*; \
	    echo "test-sanitize: sanitizer reports above ($(SANITIZE_LOGS))"; \
	    exit 1; \
	  fi; \
	  exit $$status

# Issue 10's target table, every row a ratio against a baseline run in the
# same run (bench/README.md); about 4 minutes. Builds only what it runs.
bench: setup $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS) --target phonon phonon_bench phonon_media_bench
	./bench/run.sh $(BUILD_DIR)

COMPOSE = docker-compose -f docker/docker-compose.yml
compose-up:
	$(COMPOSE) up -d --build

compose-down:
	$(COMPOSE) down
