#!/usr/bin/env bash
# setup-venv.sh VENV PYTHON: create VENV with PYTHON (re-create it when its Python version differs),
# install the build and test tools into it, then build fever (release), install it editable and
# compile its Python modules' bytecode.
# Each Python version gets its own cargo target dir so switching versions does not rebuild.
set -euo pipefail
venv=$1
python=$2
want=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
have=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "fever setup: creating $venv with Python $want ($python)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
stamp="$venv/.fever-tools"
if [ ! -f "$stamp" ] || [ requirements-dev.txt -nt "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  touch "$stamp"
fi
export VIRTUAL_ENV="$PWD/$venv"
export CARGO_TARGET_DIR="$PWD/target/py$want"
"$venv/bin/maturin" develop --release --quiet 2>&1 | grep -vE '^(📦|🔗|🐍|💻|📖|🛠|✏️|🖨|📡|⚠️  Warning: Couldn.t find)' >&2 || true
"$venv/bin/python" -c 'import fever._native' || { echo "fever setup: build failed" >&2; exit 1; }
# The package is installed editable (imported from python/): its bytecode is written here, as pip
# writes it for a wheel, so a start does not compile fever's modules (~20 M instructions) when
# PYTHONDONTWRITEBYTECODE keeps the interpreter from caching it.
"$venv/bin/python" -m compileall -q python/fever python/fever_pytest >/dev/null
