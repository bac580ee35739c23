# fever: `make demo` shows hot reload on a bundled example, `make test` runs every test.
# Both create or refresh .venv/ (Python >= 3.12, fever installed editable): .venv/bin/fever.
# Choose the interpreter with `make PYTHON=/path/to/python3.12` or FEVER_PYTHON.
# `make test` runs the end-to-end suite on every supported Python that scripts/find-python.sh finds
# (PATH, pyenv, and ../shared/tools/get-python.sh's ~/.cache/fever-pythons or $FEVER_PYTHONS);
# `make test PYTHONS="/path/to/python3.14 ..."` picks them yourself.

PYTHON ?= $(shell scripts/find-python.sh --first)
PYTHONS ?= $(shell scripts/find-python.sh)
VENV := .venv

.PHONY: all venv demo lint test test-rust test-e2e bench clean

all: venv

venv:
	@test -n "$(PYTHON)" || { echo "error: no Python >= 3.12 found; set FEVER_PYTHON" >&2; exit 1; }
	@scripts/setup-venv.sh $(VENV) $(PYTHON)

demo: venv
	@$(VENV)/bin/python examples/demo/tour.py

test: venv test-rust test-e2e

# Formatting and clippy (pedantic, every target) with warnings as errors; pyo3 needs an interpreter.
lint:
	cargo fmt --check
	PYO3_PYTHON=$(PYTHON) CARGO_TARGET_DIR=target/rust cargo clippy --workspace --all-targets --quiet -- -D warnings

test-rust:
	PYO3_PYTHON=$(PYTHON) LD_LIBRARY_PATH=$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))') \
	  CARGO_TARGET_DIR=target/rust cargo test --workspace --quiet

# The end-to-end suite runs on each of PYTHONS (one venv and one extension build per version,
# .venv for $(PYTHON)'s version); every version runs even when one fails, and the summary names them.
test-e2e: venv
	@CARGO_TARGET_DIR=target/rust cargo build --quiet --release -p fever-cli
	@failed=""; for py in $(PYTHONS); do \
	  v=$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  if [ "$$($(VENV)/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" = "$$v" ]; then venv=$(VENV); \
	  else venv=.venv-$$v; scripts/setup-venv.sh $$venv $$py || { failed="$$failed $$v(build)"; continue; }; fi; \
	  echo "== end-to-end tests on Python $$v ($$venv)"; \
	  FEVER_VENV=$$PWD/$$venv FEVER_STANDALONE=$$PWD/target/rust/release/fever $$venv/bin/python -m pytest tests -q \
	    || failed="$$failed $$v"; \
	 done; \
	 if [ -n "$$failed" ]; then echo "== end-to-end tests failed on Python$$failed" >&2; exit 1; fi; \
	 echo "== end-to-end tests passed on Python $$(for py in $(PYTHONS); do $$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'; done | tr '\n' ' ')"

bench: venv
	@$(VENV)/bin/python benches/run.py

clean:
	rm -rf target .venv .venv-3.* .bench-venv
