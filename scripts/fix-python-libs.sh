#!/usr/bin/env bash
# fix-python-libs.sh PYTHON...: completes interpreters that ../shared/tools/get-python.sh unpacked
# from Debian unstable (3.14.10, 3.15.2) when they cannot load all their libraries. get-python.sh
# takes libc, libssl and libffi from unstable but leaves libexpat to the system's, which is older
# and lacks XML_GetCurrentLineNumber64 and its siblings: the first XML parse (xml.etree,
# plistlib, xmlrpc) then ends the process with "symbol lookup error" and exit status 127. This
# puts unstable's libexpat1 beside the unpacked libraries, where the interpreter's rpath looks
# first, using get-python.sh's private apt state. A complete interpreter is left alone; drop this
# script once get-python.sh downloads libexpat1 itself.
set -euo pipefail
for py in "$@"; do
  LD_BIND_NOW=1 "$py" -c pass 2>/dev/null && continue
  dir=$(cd "$(dirname "$py")/../.." && pwd)   # .../3.14 from .../3.14/usr/bin/python3.14
  apt_conf="$(dirname "$dir")/.apt/apt.conf"
  lib="$dir/usr/lib/x86_64-linux-gnu"
  if [ ! -f "$apt_conf" ] || [ ! -d "$lib" ]; then
    echo "fix-python-libs: $py cannot load its libraries and was not installed by get-python.sh" >&2
    exit 1
  fi
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && APT_CONFIG="$apt_conf" apt-get -qq -o APT::Sandbox::User=root download libexpat1 >&2)
  dpkg-deb -x "$tmp"/libexpat1_*.deb "$tmp/x"
  cp -a "$tmp"/x/usr/lib/x86_64-linux-gnu/libexpat.so.1* "$lib/"
  rm -rf "$tmp"
  if ! LD_BIND_NOW=1 "$py" -c 'import xml.etree.ElementTree as e; e.fromstring("<a/>")'; then
    echo "fix-python-libs: $py still cannot load its libraries" >&2
    exit 1
  fi
  echo "fix-python-libs: added Debian unstable's libexpat to $dir" >&2
done
