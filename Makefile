# MAGI Studio: the README's two commands.
#
#   make run    installs everything into .venv (first time only) and starts the app on studio-mini
#   make test   installs everything into .venv (first time only) and runs the whole test suite offscreen
#
# Set-up order matters. torch comes first, as its own step: the CPU build where there is no NVIDIA GPU
# (an unpinned torch would pull several GB of CUDA packages), PyPI's CUDA build where there is one. The
# torch that ends up installed is then pinned by .venv/pip.conf, so no later install into this venv
# replaces it. A second run finds .venv up to date (a stamp newer than pyproject.toml) and skips it all.
#
# Variables: PYTHON (interpreter for a new venv), TORCH_CPU_VERSION, TORCH_CPU_INDEX (e.g.
# https://download.pytorch.org/whl/cpu on a Linux machine with no local CPU wheel), ARGS (for the app),
# PYTEST_ARGS (for pytest, e.g. make test PYTEST_ARGS="-x -k video").

PYTHON ?= python3
VENV ?= .venv
TORCH_CPU_VERSION ?= 2.13.0
TORCH_CPU_INDEX ?=
ARGS ?=
PYTEST_ARGS ?=

BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.magi-studio-installed
APP_DEBS := libpulse0 libxcb-icccm4 libxcb-keysyms1
# Tests also validate the .desktop and AppStream files (tests/packaging; skipped without these tools).
TEST_DEBS := $(APP_DEBS) xvfb xauth desktop-file-utils appstream

.PHONY: run test setup bundle debs-app debs-test clean

run: debs-app $(STAMP)
	$(BIN)/magi-studio $(ARGS)

test: debs-test $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

setup: $(STAMP)

# The one-folder app bundle dist/magi-studio/ with studio-mini inside, and its tarball (PyInstaller,
# packaging/build_bundle.sh; see packaging/README.md: about 2 minutes on 2 cores, 1.1 GB, 430 MB as
# .tar.gz). `make test` builds it too (tests/packaging/test_bundle.py), unless it is newer than the sources.
bundle: $(STAMP)
	VENV=$(VENV) bash packaging/build_bundle.sh

$(STAMP): pyproject.toml
	@if [ ! -x $(BIN)/python ]; then \
	  $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
	    || { echo "setup: MAGI Studio needs Python 3.10 or newer; try: make PYTHON=python3.11 ..."; exit 1; }; \
	  echo "setup: creating $(VENV) with $$($(PYTHON) --version)"; \
	  $(PYTHON) -m venv $(VENV) || exit 1; \
	fi
	@if torch=$$($(BIN)/python -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null); then \
	  echo "setup: torch $$torch is already installed: keeping it"; \
	elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "setup: NVIDIA GPU found: installing torch with CUDA"; \
	  $(PIP) install --quiet "torch>=2.5" || exit 1; \
	else \
	  echo "setup: no NVIDIA GPU: installing the CPU build of torch $(TORCH_CPU_VERSION)"; \
	  $(PIP) install --quiet "torch==$(TORCH_CPU_VERSION)" $(if $(TORCH_CPU_INDEX),--index-url $(TORCH_CPU_INDEX)) || exit 1; \
	fi
	@$(BIN)/python -c "import importlib.metadata as m; print('torch==' + m.version('torch'))" > $(VENV)/constraints.txt
	@printf '[install]\nconstraint = %s\n' "$(abspath $(VENV))/constraints.txt" > $(VENV)/pip.conf
	@echo "setup: installing MAGI Studio and its dependencies ($$(cat $(VENV)/constraints.txt) stays)"
	@$(PIP) install --quiet -e ".[test]"
	@touch $@
	@echo "setup: $(VENV) is ready"

# Debian packages Qt needs (QtMultimedia: libpulse0; real windows under Xvfb: xcb, xvfb, xauth) and the
# validators of the Linux desktop files.
# Installed when missing and we are root with apt-get; otherwise one line says what is missing.
define install_debs
@if ! command -v dpkg-query >/dev/null 2>&1; then \
  echo "setup: no dpkg on this system: skipping the Debian packages ($(1))"; exit 0; fi; \
missing=""; \
for p in $(1); do \
  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
done; \
if [ -z "$$missing" ]; then exit 0; fi; \
if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
  echo "setup: installing Debian packages:$$missing"; log=$$(mktemp); \
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } \
    >$$log 2>&1 || echo "setup: apt-get could not install$$missing (log: $$log); Qt multimedia or Xvfb may fail"; \
else \
  echo "setup: missing Debian packages:$$missing (install them with: sudo apt-get install$$missing)"; \
fi
endef

debs-app:
	$(call install_debs,$(APP_DEBS))

debs-test:
	$(call install_debs,$(TEST_DEBS))

clean:
	rm -rf build dist *.egg-info .pytest_cache
