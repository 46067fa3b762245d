# rc-snn: `make demo` runs the main job, `make test` runs the test suite.
# Both create .venv with Python 3.10 (lava-nc 0.10.0 needs >=3.10,<3.11) when it is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# A Python 3.10 interpreter: $PYTHON310 if set, else python3.10 on PATH, else pyenv's newest 3.10.x.
# (pyenv's python3.10 shim exists but fails when 3.10 is not the active version, so each candidate is run.)
PYTHON310 ?= $(shell for p in python3.10 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.10.*/bin/python3.10 2>/dev/null | sort -rV); do \
  "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)

.PHONY: demo test test-fast docs bench-quick venv clean help

help:
	@echo "make demo   set up .venv (Python 3.10) and run the main job (rc-snn demo)"
	@echo "make test   set up .venv and run the test suite"
	@echo "make test-fast  the suite without the tests marked lava or slow"
	@echo "make docs   the documentation site with its API reference (build/site; any warning fails)"
	@echo "make bench-quick  every benchmark at a small size, to check they run (figures: benchmarks/RESULTS.md)"

venv: $(STAMP)

$(STAMP): setup.cfg setup.py
	@py="$(firstword $(PYTHON310))"; \
	if [ -z "$$py" ] || ! "$$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then \
	  echo "error: rc-snn needs Python 3.10 (lava-nc 0.10.0 supports only >=3.10,<3.11)." >&2; \
	  echo "  Install it (e.g. 'pyenv install 3.10.13' or your OS's python3.10 package)," >&2; \
	  echo "  or point to one: make PYTHON310=/path/to/python3.10 ..." >&2; \
	  exit 1; \
	fi; \
	if [ ! -x $(PY) ]; then echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV); fi
	$(PY) -m pip install --quiet --no-cache-dir --upgrade pip
	@# --no-cache-dir: torch's CUDA build and its nvidia libraries are ~6 GB installed; a wheel
	@# cache would hold another ~3 GB on disk, which a small CI machine does not have.
	$(PY) -m pip install --quiet --no-cache-dir -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rc-snn demo

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not lava and not slow"

# Every benchmark at a toy size, one after the other, in a scratch folder: a check that each still
# runs, not a measurement (the sizes and commands measured are in benchmarks/RESULTS.md). The
# real-data ones use ../shared/data/nmnist-small (RC_SNN_NMNIST_SMALL) and are skipped without it.
NMNIST_SMALL ?= $(or $(RC_SNN_NMNIST_SMALL),../shared/data/nmnist-small)
bench-quick: $(STAMP)
	@set -e; out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; B="$(PY) benchmarks"; \
	run() { echo "== $$*"; "$$@" > "$$out/log" 2>&1 || { cat "$$out/log"; exit 1; }; tail -3 "$$out/log"; }; \
	run $$B/bench_layer.py --reps 1 --warmup 0 --steps 20 --hidden 64 --batch 16; \
	run $$B/bench_first_steps.py --epochs 1 --limit-train 128 --limit-val 64 --hidden 32 --steps 5 20; \
	run $$B/bench_rank_coding.py --epochs 2 --limit-train 128 --limit-val 64 --hidden 32 --out "$$out/rank"; \
	run $$B/bench_bptt.py --samples 64 --reps 1; \
	run $$B/bench_distributed.py --samples 128 --repeats 1 --hidden 32; \
	run $$B/bench_lava.py --samples 20 --batch-size 10 --bin-ms 5; \
	run $$B/bench_temporal_mnist.py --epochs 1 --models lstm alif --hidden 32; \
	if [ -d "$(NMNIST_SMALL)/NMNIST" ]; then \
	  run $$B/bench_data.py --nmnist-dir "$(NMNIST_SMALL)"; \
	  run $$B/bench_threads.py --data-dir "$(NMNIST_SMALL)" --epochs 2; \
	else echo "== skipped bench_data.py and bench_threads.py: no $(NMNIST_SMALL)"; fi; \
	echo "not run here: bench_fixed_point.py and bench_energy_frontier.py cv read cross-validation folders (rc-snn cv);" \
	     "bench_energy_frontier.py sim trains a family of sizes (minutes)"

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict -f docs/mkdocs.yml

clean:
	rm -rf $(VENV) build *.egg-info
