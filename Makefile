# Phonon — native targets (the earlier service ran these through Docker).
#   make run    installs what is missing, builds, serves on :8080
#   make test   installs, builds, runs every test (a private MariaDB included)

BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
DATA_DIR ?= ./data

.PHONY: setup build run run-scratch clean test unit-test integration-test bench compose-up compose-down

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

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 1200

unit-test: build
	./$(BUILD_DIR)/phonon_unit_tests

integration-test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -R integration

bench: build
	./bench/run.sh $(BUILD_DIR)

COMPOSE = docker-compose -f docker/docker-compose.yml
compose-up:
	$(COMPOSE) up -d --build

compose-down:
	$(COMPOSE) down
