# predmaint: `make demo` runs the pipeline on embedded defaults, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The labelled datasets (NAB, SKAB, IMS, CWRU) beside the checkout unless set.
export PREDMAINT_SHARED_DATA ?= $(abspath ../shared/data)

.PHONY: setup influxdb demo test bench evaluate chaos clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 12)), "predmaint needs Python 3.11 or 3.12 (bytewax 0.21.1 wheels)"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,report]'
	touch $@

# The tests run a real InfluxDB 1.x (Debian package) on loopback and validate
# docker-compose.yml offline with Debian's docker-compose.
influxdb:
	@command -v influxd >/dev/null && command -v docker-compose >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq influxdb docker-compose >/dev/null; }
	@command -v influxd >/dev/null || { echo "influxd not installed"; exit 1; }

demo: setup
	$(BIN)/predmaint demo

test: setup influxdb
	$(BIN)/python -m pytest -q

# The Quix Streams peer is a benchmark-only dependency (extra "bench"), in a venv of its own:
# quixstreams 3.28 pins confluent-kafka < 2.13, and predmaint run on confluent-kafka 2.12 died with
# a segmentation fault when the broker lost its topics (tests/test_recreated_topic.py; 2.16 does not).
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q -e '.[bench]'
	touch $@

bench: setup influxdb $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/predmaint bench

# Every corpus through the real dataflow with the default configuration: scoreboards, then one JSON line each.
evaluate: setup
	$(BIN)/predmaint evaluate --json --plot .predmaint/evaluate

# Fault injection on loopback (kill -9, InfluxDB stopped and frozen 60 s, broker restarted empty, webhook
# outages, notify killed, 10,000 hostile messages): one table, then one JSON line (README: Reliability).
chaos: setup influxdb
	$(BIN)/predmaint chaos

clean:
	rm -rf .predmaint
