# Two commands for a fresh machine: `make demo` and `make test`.
# Both create or reuse .venv, install what is missing, then run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
APT_PKGS := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxkbcommon-x11-0 libxcb-cursor0 \
            libxcb-image0 libxcb-render-util0 libxcb-shape0 libgl1 libegl1 libglx-mesa0 libgl1-mesa-dri \
            libfontconfig1 libdbus-1-3

.PHONY: demo test test-fast lint bench data setup apt clean

setup: $(STAMP)

# GUI tests need Xvfb and Qt's xcb libraries; install them when we are root and they are missing.
apt:
	@if ! command -v Xvfb >/dev/null 2>&1 || ! dpkg -s libxcb-icccm4 libxcb-keysyms1 >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Xvfb and Qt xcb libraries (apt)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PKGS) >/dev/null) \
	      || echo "warning: apt install failed; GUI tests will be skipped"; \
	  else echo "note: Xvfb missing and not root; GUI tests will be skipped"; fi; \
	fi

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the local CPU wheel, never the CUDA stack.
	$(PY) -m pip install -q -c constraints.txt torch
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: apt $(STAMP)
	$(VENV)/bin/napari-smp demo --out demo_output $(if $(DISPLAY),--gui,)

test: apt $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not gui and not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

data: $(STAMP)
	$(PY) scripts/fetch_data.py

bench: $(STAMP)
	$(PY) benchmarks/metrics.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache
