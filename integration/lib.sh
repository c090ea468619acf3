# integration/lib.sh — helpers shared by the integration/*.sh scripts.
# Source it; it defines functions only (no side effects on load).

# --- test reporting -------------------------------------------------------
# One line per case: "ok - name" or "not ok - name: reason".
# End with `t_summary`: prints "N passed, N failed" and returns non-zero on failure.
T_PASSED=0
T_FAILED=0

t_ok() {
	echo "ok - $1"
	T_PASSED=$((T_PASSED + 1))
}

t_fail() {
	local name=$1
	shift
	# Keep the reason on one line.
	local reason
	reason=$(printf '%s' "$*" | tr '\r\n' '  ' | sed 's/  */ /g; s/ $//')
	echo "not ok - $name: $reason"
	T_FAILED=$((T_FAILED + 1))
}

t_summary() {
	echo "$T_PASSED passed, $T_FAILED failed"
	[ "$T_FAILED" -eq 0 ]
}

# Print a message to stderr, prefixed with the script name.
t_log() {
	echo "${0##*/}: $*" >&2
}

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		t_log "must run as root"
		exit 2
	fi
}

# --- cgroups ---------------------------------------------------------------
# Every cgroup mount point (v1 hierarchies and the cgroup2 one), one per line.
cg_mountpoints() {
	# Optional fields vary in number: the fs type follows the "-" separator.
	awk '{ for (i = 7; i <= NF; i++) if ($i == "-") break;
	       if ($(i + 1) == "cgroup" || $(i + 1) == "cgroup2") print $5 }' /proc/self/mountinfo
}

# The path of this process's cgroup that is deepest below the root.
# On this host (hybrid layout) the memory controller puts the caller in
# e.g. /process_api/<hex> while the other hierarchies are at /: a child of
# the deepest path is below the caller's cgroup in every hierarchy (each
# other hierarchy has the caller at /, an ancestor of any path).
cg_own_path() {
	local best=/ line path
	while IFS= read -r line; do
		path=${line#*:*:}
		if [ "${#path}" -gt "${#best}" ]; then
			best=$path
		fi
	done </proc/self/cgroup
	echo "$best"
}

# A relative cgroup path is "below the caller" in hierarchy H if the caller's
# path in H is a prefix of it. Fails (and says which) if not.
cg_check_below_own() {
	local want=$1 line path
	while IFS= read -r line; do
		path=${line#*:*:}
		case "$want/" in
		"${path%/}/"*) ;;
		*)
			t_log "cgroup $want is not below $path (line: $line)"
			return 1
			;;
		esac
	done </proc/self/cgroup
}

# cg_prepare PATH: remember, per hierarchy, the first component of PATH that
# does not exist yet (whatever we or the engine create from there down is
# ours to remove). Records go to the file named by $CG_RECORD.
cg_prepare() {
	local want=$1 mp rel p comp
	: >"$CG_RECORD"
	while IFS= read -r mp; do
		p=$mp
		rel=${want#/}
		IFS=/ read -ra comps <<<"$rel"
		for comp in "${comps[@]}"; do
			p=$p/$comp
			if [ ! -d "$p" ]; then
				echo "$p" >>"$CG_RECORD"
				break
			fi
		done
	done < <(cg_mountpoints)
}

# cg_cleanup: rmdir (never rm -r: cgroupfs) every directory below each
# recorded top, deepest first. A cgroup that still has processes stays, and
# is reported.
cg_cleanup() {
	local top left=0
	[ -f "$CG_RECORD" ] || return 0
	while IFS= read -r top; do
		[ -d "$top" ] || continue
		while IFS= read -r d; do
			rmdir "$d" 2>/dev/null || true
		done < <(find "$top" -depth -type d 2>/dev/null)
		if [ -d "$top" ]; then
			t_log "could not remove cgroup $top"
			left=1
		fi
	done <"$CG_RECORD"
	return "$left"
}

# cg_find NAME_PART: cgroup directories below the recorded tops whose name
# contains NAME_PART (used to check that nothing is left behind).
cg_find() {
	local top
	[ -f "$CG_RECORD" ] || return 0
	while IFS= read -r top; do
		[ -d "$top" ] || continue
		find "$top" -type d -name "*$1*" 2>/dev/null
	done <"$CG_RECORD"
}

# --- mounts ------------------------------------------------------------------
# Unmount everything mounted at or below DIR, deepest first.
umount_below() {
	local dir=$1 mp
	awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | while IFS= read -r mp; do
		umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || true
	done
}

# --- processes ---------------------------------------------------------------
# Pids of processes whose command line mentions STRING (to find what an
# engine left running that belongs to this test: its temp dir is in argv).
pids_mentioning() {
	local s=$1 f pid
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		[ "$pid" = "$$" ] && continue
		# The process may be gone by now: ignore errors.
		if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF -- "$s"; then
			echo "$pid"
		fi
	done
}
