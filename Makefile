# Every target sets up what it needs from nothing: a venv in .venv, the project and its dependencies.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FASHION := /usr/share/datasets/fashion-mnist
ARGS ?=

.PHONY: setup data train test test-fast bench bench-switches clean

setup: $(VENV)/.installed

# torch/torchvision are pinned (2.14.1 / 0.29.1) in pyproject.toml: pip takes them from this machine's disk.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The bench extra: diffusers, the peer contestant of bench/throughput.py (a few seconds to install).
$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

# Fashion-MNIST from Debian's package (IDX files in $(FASHION)); needs root or sudo, skipped otherwise.
data:
	@if [ ! -f $(FASHION)/train-images-idx3-ubyte.gz ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ($$SUDO apt-get update -q && $$SUDO apt-get install -y -q dataset-fashion-mnist) \
	  || echo "note: could not install dataset-fashion-mnist; tests that need it are skipped"; \
	fi

train: setup
	$(PY) src/train.py $(ARGS)

test: setup $(VENV)/.bench data
	$(PY) -m pytest -q tests $(ARGS)

test-fast: setup
	$(PY) -m pytest -q tests -m "not slow" $(ARGS)

bench: setup $(VENV)/.bench data
	$(PY) bench/throughput.py $(ARGS)

# Each speed switch of the default run on and off (precision, memory format, fused AdamW, logging, grids, FID).
bench-switches: setup
	$(PY) bench/switches.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache src/*.egg-info
