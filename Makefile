# Every target sets up what it needs from nothing: a venv in .venv, the project and its dependencies.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FASHION := /usr/share/datasets/fashion-mnist
ARGS ?=

.PHONY: setup data train test test-fast bench bench-switches clean

setup: $(VENV)/.installed

# The project in editable mode with every extra (pyproject.toml) and the test tools. constraints.txt holds the
# exact torch/torchvision releases that pip takes from this machine's disk; pyproject.toml's ranges alone could
# make it download others.
$(VENV)/.installed: pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[all,test]'
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

# One pytest worker per core (pytest-xdist): each test runs torch on one thread (tests/conftest.py), so a single
# worker would leave the other cores idle. TEST_WORKERS=0 runs the suite in this process (for a debugger).
TEST_WORKERS ?= auto
test: setup data
	$(PY) -m pytest -q tests -n $(TEST_WORKERS) $(ARGS)

test-fast: setup
	$(PY) -m pytest -q tests -n $(TEST_WORKERS) -m "not slow" $(ARGS)

bench: setup data
	$(PY) bench/throughput.py $(ARGS)

# Each speed switch of the default run on and off (precision, memory format, fused AdamW, logging, grids, FID).
bench-switches: setup
	$(PY) bench/switches.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache src/*.egg-info build dist
