#!/usr/bin/env bash
# setup-venv.sh VENV PYTHON: create VENV with PYTHON (re-create it when its Python version differs),
# install the build and test tools into it, then build fever (release) and install it editable.
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
