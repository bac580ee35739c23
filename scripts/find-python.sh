#!/usr/bin/env bash
# Prints the paths of Python interpreters >= 3.12 on this machine, best first, one per minor
# version: FEVER_PYTHON (or the first argument), then python3.13/python3.12 on PATH, then pyenv's
# versions. With --first, prints only the best one. Exits 1 with a message when there is none.
set -u
first=0
if [ "${1:-}" = "--first" ]; then first=1; shift; fi
candidates=()
[ -n "${1:-}" ] && candidates+=("$1")
[ -n "${FEVER_PYTHON:-}" ] && candidates+=("$FEVER_PYTHON")
for name in python3.14 python3.13 python3.12; do
  p=$(command -v "$name" 2>/dev/null) && candidates+=("$p")
done
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for p in $(ls -d "$root"/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -rV); do candidates+=("$p"); done
fi
seen=""
for c in "${candidates[@]}"; do
  v=$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2]) if sys.version_info >= (3, 12) else sys.exit(1)' 2>/dev/null) || continue
  real=$("$c" -c 'import sys; print(sys.executable)' 2>/dev/null) || continue
  case " $seen " in *" $v "*) continue ;; esac
  seen="$seen $v"
  echo "$real"
  [ $first = 1 ] && exit 0
done
if [ -z "$seen" ]; then
  echo "error: no Python >= 3.12 found (set FEVER_PYTHON=/path/to/python3.12)" >&2
  exit 1
fi
