# The habits people already type: make run / make test / make bench.
# The virtualenv sees system site packages so a vendor torch (DTK on Hygon DCU, a CUDA or ROCm
# build) is reused; the CPU wheel torch==2.13.0 is installed only when no torch imports at all.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dcu-chat-installed
ARGS ?=

.PHONY: setup run test test-fast bench lint doctor browser clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv --system-site-packages $(VENV)
	@if $(PY) -c "import torch" 2>/dev/null; then \
		echo "Reusing installed torch $$($(PY) -c 'import torch; print(torch.__version__)')"; \
	else \
		echo "No torch found: installing the CPU wheel torch==2.13.0"; \
		$(PY) -m pip install --quiet torch==2.13.0; \
	fi
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: setup
	$(PY) app.py $(ARGS)

doctor: setup
	$(PY) app.py doctor

# Browser tests drive Debian's chromium (Playwright's own browser download is not reachable).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "Installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "WARNING: could not install chromium; browser tests will be skipped"; }

test: setup browser
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest tests/unit

bench: setup
	$(PY) -m bench $(ARGS)

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
