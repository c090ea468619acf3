#!/usr/bin/env bash
# Fill bundles/busybox/rootfs/ from Debian's busybox-static.
# Idempotent: running it again brings rootfs/ back to the same content.
# The rootfs is generated, never committed (see .gitignore).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rootfs="$here/rootfs"

find_busybox() {
	local p
	for p in /bin/busybox /usr/bin/busybox; do
		if [ -x "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

busybox=$(find_busybox || true)
if [ -z "$busybox" ] || ! dpkg -s busybox-static >/dev/null 2>&1; then
	# Debian's busybox (the dynamic one) cannot run inside an empty rootfs:
	# we need the static build.
	echo "prepare.sh: installing busybox-static" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y busybox-static; then
		apt-get update
		apt-get install -y busybox-static
	fi
	busybox=$(find_busybox)
fi

# A static binary is the only one that runs without a loader in rootfs/.
if file_out=$(LC_ALL=C file -L "$busybox" 2>/dev/null); then
	case "$file_out" in
	*dynamically*) echo "prepare.sh: $busybox is not static" >&2; exit 1 ;;
	esac
fi

mkdir -p "$rootfs"
for d in bin proc sys dev tmp etc root; do
	mkdir -p "$rootfs/$d"
done
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"

# Replace the binary only when it changed (cp to a temp name, then rename).
if ! cmp -s "$busybox" "$rootfs/bin/busybox"; then
	cp "$busybox" "$rootfs/bin/.busybox.tmp"
	chmod 0755 "$rootfs/bin/.busybox.tmp"
	mv -f "$rootfs/bin/.busybox.tmp" "$rootfs/bin/busybox"
fi

# One symlink per applet, all in bin/ (PATH in config.json includes /bin).
"$busybox" --list | while read -r applet; do
	[ "$applet" = busybox ] && continue
	ln -sfn busybox "$rootfs/bin/$applet"
done

cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD

cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
GROUP

echo "prepare.sh: $rootfs ready ($(ls "$rootfs/bin" | wc -l) entries in bin/)"
