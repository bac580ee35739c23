#!/usr/bin/env bash
# Prints the paths of the Python interpreters fever supports (CPython 3.12 to 3.15, not
# free-threaded) on this machine, best first, one per minor version: FEVER_PYTHON (or the first
# argument), then python3.13/python3.12/python3.14/python3.15 on PATH, then pyenv's versions, then
# those installed by get-python.sh (../shared/tools/get-python.sh 3.14 3.15, which unpacks them
# under $FEVER_PYTHONS, default ~/.cache/fever-pythons). With --first, prints only the best one.
# Exits 1 with a message when there is none.
set -u
first=0
if [ "${1:-}" = "--first" ]; then first=1; shift; fi
candidates=()
[ -n "${1:-}" ] && candidates+=("$1")
[ -n "${FEVER_PYTHON:-}" ] && candidates+=("$FEVER_PYTHON")
for name in python3.13 python3.12 python3.14 python3.15; do
  p=$(command -v "$name" 2>/dev/null) && candidates+=("$p")
done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do candidates+=("$p"); done
fi
for p in $(ls -d "${FEVER_PYTHONS:-$HOME/.cache/fever-pythons}"/3.1[2-9]*/usr/bin/python3.1[2-9] 2>/dev/null | sort -V); do
  candidates+=("$p")
done
seen=""
for c in "${candidates[@]}"; do
  # Prints "3.14" for a supported interpreter, "skip 3.16 ..." for one fever refuses.
  v=$("$c" -c 'import sys
v = "%d.%d" % sys.version_info[:2]
if "t" in sys.abiflags: print("skip", v + "t", "(free-threaded)")
elif sys.version_info[:2] > (3, 15): print("skip", v, "(newer than fever knows)")
elif sys.version_info >= (3, 12): print(v)' 2>/dev/null) || continue
  [ -n "$v" ] || continue
  case $v in skip*) echo "find-python: ${v#skip } $c: not supported, skipped" >&2; continue ;; esac
  # An interpreter that cannot bind all its symbols dies (exit 127) on first use of the missing one.
  if ! LD_BIND_NOW=1 "$c" -c pass 2>/dev/null; then
    echo "find-python: $c cannot load its libraries, skipped (scripts/fix-python-libs.sh $c completes a get-python.sh install)" >&2
    continue
  fi
  real=$("$c" -c 'import sys; print(sys.executable)' 2>/dev/null) || continue
  case " $seen " in *" $v "*) continue ;; esac
  seen="$seen $v"
  echo "$real"
  [ $first = 1 ] && exit 0
done
if [ -z "$seen" ]; then
  echo "error: no Python 3.12 to 3.15 found (set FEVER_PYTHON=/path/to/python3.12)" >&2
  exit 1
fi
