#!/usr/bin/env bash
# Fails when a Linux addon needs a newer glibc than the floor: the highest GLIBC_x.y version it
# requires (its ELF version needs, what the dynamic loader checks) must not exceed <floor>.
#
#   bash scripts/check-glibc.sh <floor, e.g. 2.17> <file.node>...
set -euo pipefail
floor="$1"; shift
status=0
for f in "$@"; do
  need="$(readelf -V -W "$f" | grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: GLIBC_//' | sort -V | tail -1)"
  [ -n "$need" ] || { echo "$f: no GLIBC version needs found (not a glibc ELF file?)" >&2; status=1; continue; }
  if [ "$(printf '%s\n%s\n' "$need" "$floor" | sort -V | tail -1)" != "$floor" ]; then
    echo "$f needs GLIBC_$need, newer than the documented floor GLIBC_$floor:" >&2
    readelf -V -W "$f" | grep -o 'Name: GLIBC_[0-9.]*' | sort -uV >&2
    status=1
  else
    echo "$f: needs GLIBC_$need (floor $floor)"
  fi
done
exit $status
