# The two commands of the README:  make book  (build and run every chapter)  and  make test.
# Both set up everything they need on a fresh Linux machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup book test test-core bench bench-instructions drift drift-env lab clean

$(STAMP): requirements.txt pyproject.toml setup.py $(wildcard tracer/record/*.c tracer/record/*.h)
	@$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || { echo "$(PYTHON) cannot make virtual environments: install its venv module (Debian/Ubuntu: apt-get install python3-venv), or run make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned environment (about 3 GB to download, 5.7 GB installed: torch 2.14.1 is a CUDA build)"
	$(PY) -m pip install --disable-pip-version-check --progress-bar $(if $(CI),off,on) -r requirements.txt -e .
	touch $(STAMP)

setup: $(STAMP)

book: setup
	$(PY) -m tracer.book build

test: setup
	bash .ci/install-browser.sh
	bash benchmarks/setup-pythons.sh
	PYTHON=$(PYTHON) bash .ci/drift-env.sh
	$(PY) -m pytest
	bash .ci/test-core.sh

# The torch-free core on the other Pythons that are installed (sys.monitoring runs on 3.12 and newer).
test-core:
	bash .ci/test-core.sh

# What tracing costs, against viztracer, cProfile and torch.profiler: writes benchmarks/RESULTS.md (about
# 17 minutes; BENCH_ARGS=--smoke for one repetition).
bench: setup
	bash benchmarks/setup-pythons.sh
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# Instructions each mode costs on the torch-free workload, counted by valgrind's callgrind, on each Python
# installed: steady where wall times are not (see benchmarks/instructions.py for what it leaves out).
bench-instructions: setup
	bash benchmarks/setup-pythons.sh
	$(PY) benchmarks/instructions.py --python $(PY) $(foreach v,3.12 3.13,$(if $(wildcard .venv$(v)/bin/python),--python .venv$(v)/bin/python))

# The book on a second torch (2.13.0, CPU) against its own: writes notebooks/DRIFT.md (and site/drift.html
# where the site exists). The second environment is .venv-torch2.13.
drift-env: setup
	PYTHON=$(PYTHON) bash .ci/drift-env.sh

drift: drift-env
	$(PY) -m tracer book drift

# JupyterLab on the notebooks, in the book's environment.
lab: setup
	@$(PY) -c "import jupyterlab" 2>/dev/null || { echo "JupyterLab is not in $(VENV): add jupyterlab to requirements.txt (or $(PY) -m pip install jupyterlab), then make lab"; exit 1; }
	$(VENV)/bin/jupyter lab notebooks

clean:
	rm -rf $(VENV) .venv3.* .venv-torch2.13 site build
