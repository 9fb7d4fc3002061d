# The habits people already type: make run / make test / make bench.
# The virtualenv sees system site packages so a vendor torch (DTK on Hygon DCU, a CUDA or ROCm
# build) is reused; the CPU wheel torch==2.13.0 is installed only when no torch imports at all.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dcu-chat-installed
ARGS ?=

.PHONY: setup run test test-fast bench bench-gpu bench-pool lint doctor app-deps test-deps clean

# Install the Debian packages in $(1) that are missing (sudo when not root); $(2) says what for.
define install_debs
	@missing=""; for deb in $(1); do dpkg -s $$deb >/dev/null 2>&1 || missing="$$missing $$deb"; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages $(2):$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		($$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null) \
		|| echo "WARNING: could not install$$missing; $(3)"; \
	fi
endef

setup: app-deps $(STAMP)

# The app's own system packages: Tesseract with English and Simplified Chinese data reads scanned
# PDF pages and images (OCR); bubblewrap is the code sandbox (--sandbox). Without them the app
# still runs and says how to install them.
APP_DEBS := tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim bubblewrap
app-deps:
	$(call install_debs,$(APP_DEBS),for OCR of scanned documents and the code sandbox,scanned PDFs and images will be refused and --sandbox cannot run code; each says how to install what it needs)

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

# Test-only system packages from Debian: chromium drives the browser tests (Playwright's own
# browser download is not reachable), a CJK font lets the tests write Chinese PDFs, an emoji font
# draws the buttons' icons (📎 Files) in the screenshots, and OpenLDAP's
# slapd (with ldap-utils) is the real directory of the LDAP sign-in tests, which start their own from
# a temp slapd.conf: debconf is told first not to configure a system-wide directory.
TEST_DEBS := chromium fonts-wqy-microhei fonts-noto-color-emoji slapd ldap-utils
test-deps:
	@dpkg -s slapd >/dev/null 2>&1 || echo "slapd slapd/no_configuration boolean true" \
		| $$( [ "$$(id -u)" = 0 ] || echo sudo ) debconf-set-selections 2>/dev/null || true
	$(call install_debs,$(TEST_DEBS),for the tests,the tests that need them will be skipped and say so)

test: setup test-deps
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest tests/unit

bench: setup
	$(PY) -m bench $(ARGS)

# The 7B-shaped GPU/DCU benchmark (bench/gpu.py): at most 7 minutes of work; ARGS=--tiny runs it
# on a 2-layer model in seconds (any machine). bench/gpu_device_run.sh is the one-call device run.
bench-gpu: setup
	$(PY) -m bench.gpu --budget-s 420 $(ARGS)

# One app process in front of two llama.cpp servers: its CPU per streamed token and added latency
# at 1-64 concurrent chats (bench/pool_capacity.py; docs/deploy.md quotes it).
bench-pool: setup
	$(PY) -m bench.pool_capacity $(ARGS)

lint: setup
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
