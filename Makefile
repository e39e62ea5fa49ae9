# oceanbridge: two commands for a newcomer on a fresh Debian machine.
#   make demo   builds everything and runs the main job
#   make test   builds everything and runs the default test suite
# Every step is idempotent: a second run only redoes what changed.

SHELL   := /bin/bash
VENV    ?= .venv
PY      := $(VENV)/bin/python
BUILD   ?= $(CURDIR)/build
STAMPS  := .stamps
APT_PKGS := gfortran openmpi-bin libopenmpi-dev libnetcdff-dev libnetcdf-dev netcdf-bin make
PYTEST_ARGS ?=

.PHONY: all demo test test-slow test-oasis deps venv fortran bench clean distclean

all: fortran venv

demo: all
	$(VENV)/bin/oceanbridge demo

test: all
	$(PY) -m pytest -m "not slow and not gpu and not oasis and not nemo and not croco" $(PYTEST_ARGS)

test-slow: all
	$(PY) -m pytest -m "slow" $(PYTEST_ARGS)

# Tests marked oasis, against an OASIS3-MCT build (README.md, "Installing OASIS3-MCT").
# OASIS_DIR alone runs tests/oasis and tests/deploy; the NEMO and CROCO OASIS tests
# skip unless NEMO_DIR (cfgs/GYRE_OAS built) and CROCO_OASIS_DIR (a BASIN run folder
# built against OASIS, with OUT_DOUBLE) are set too (README.md, "Testing"):
#   make test-oasis OASIS_DIR=... NEMO_DIR=... CROCO_OASIS_DIR=...
test-oasis: all
	@test -n "$(OASIS_DIR)" || { echo "test-oasis: set OASIS_DIR to an OASIS3-MCT build (see deploy/README.md)"; exit 2; }
	$(PY) -m pytest -m "oasis" $(PYTEST_ARGS)

# --- Debian packages (gfortran, Open MPI, netCDF-Fortran) -------------------
deps: $(STAMPS)/apt
$(STAMPS)/apt:
	@mkdir -p $(STAMPS)
	@if command -v gfortran >/dev/null && command -v mpif90 >/dev/null && command -v mpirun >/dev/null \
	    && command -v nf-config >/dev/null; then \
	  echo "[deps] gfortran, Open MPI and netCDF-Fortran already present"; \
	else \
	  echo "[deps] installing Debian packages: $(APT_PKGS)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PKGS); \
	fi
	@touch $@

# --- Python virtual environment (torch CPU build first, then the project with its ml and test extras) ---
venv: $(STAMPS)/venv
$(STAMPS)/venv: pyproject.toml $(STAMPS)/apt
	@mkdir -p $(STAMPS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -e ".[ml,test]"
	@touch $@

# --- Fortran: the bridge library and every Fortran program built on it -----
fortran: $(STAMPS)/apt
	$(MAKE) -s -C bridge/fortran BUILD=$(BUILD)
	@if [ -f gyre/Makefile ]; then $(MAKE) -s -C gyre BUILD=$(BUILD); fi

bench: all
	$(PY) benchmarks/bench_bridge.py

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(VENV) $(STAMPS) *.egg-info
