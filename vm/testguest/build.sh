#!/bin/sh
# Builds the test guest with binutils: vm/testguest/build.sh OUT
set -eu
out=${1:-target/testguest.bin}
here=$(dirname "$0")
obj=$(mktemp --suffix=.o)
trap 'rm -f "$obj"' EXIT
mkdir -p "$(dirname "$out")"
as --64 -o "$obj" "$here/guest.S"
ld -nostdlib -T "$here/guest.ld" --oformat binary -o "$out" "$obj"
echo "testguest: $out ($(stat -c %s "$out") bytes)"
