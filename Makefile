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

.PHONY: demo test test-fast docs venv clean help

help:
	@echo "make demo   set up .venv (Python 3.10) and run the main job (rc-snn demo)"
	@echo "make test   set up .venv and run the test suite"
	@echo "make test-fast  the suite without the tests marked lava or slow"
	@echo "make docs   the documentation site with its API reference (build/site; any warning fails)"

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

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict -f docs/mkdocs.yml

clean:
	rm -rf $(VENV) build *.egg-info
