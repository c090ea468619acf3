#!/usr/bin/env python3
"""Regenerate the hostile corpus: python3 tests/hostile/gen.py (from the repo).
Each case: a config.json (create) or process.json (exec), and a line in
cases.txt: file<TAB>kind<TAB>expected substring. kind: create (must fail),
exec (must fail), runs (create must succeed: unknown properties, odd but
legal input), exec-runs."""
import copy, json, os
HERE = os.path.dirname(os.path.abspath(__file__))
CAPS = ["CAP_KILL", "CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"]
BASE = {
    "ociVersion": "1.0.2",
    "process": {"terminal": False, "user": {"uid": 0, "gid": 0},
                "args": ["sh", "-c", "sleep 0.3"], "env": ["PATH=/bin"], "cwd": "/",
                "capabilities": {"bounding": CAPS, "effective": CAPS, "permitted": CAPS}},
    "root": {"path": "rootfs"},
    "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}],
    "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}],
              "cgroupsPath": "husk-hostile"},
}
cases = []

def case(name, kind, expect, mut=None, raw=None, base=BASE):
    if raw is None:
        c = copy.deepcopy(base)
        mut(c)
        raw = json.dumps(c, indent=None if len(json.dumps(c)) > 100000 else 1)
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        f.write(raw)
    cases.append(f"{name}.json\t{kind}\t{expect}")

def set_(path, v):
    def m(c):
        o = c
        for k in path[:-1]:
            o = o[k]
        o[path[-1]] = v
    return m

def p(*fs):
    def m(c):
        for f in fs:
            f(c)
    return m

full = json.dumps(BASE, indent=1)
case("truncated", "create", "EOF while parsing", raw=full[: len(full) // 2])
case("empty", "create", "EOF while parsing", raw="")
case("not_an_object", "create", "invalid type", raw="[1,2,3]")
case("trailing_garbage", "create", "trailing characters", raw=full + "}}")
case("type_ociversion", "create", "ociVersion", set_(["ociVersion"], 1))
case("type_args", "create", "process.args", set_(["process", "args"], "sh"))
case("type_uid_string", "create", "process.user.uid", set_(["process", "user", "uid"], "0"))
case("type_uid_float", "create", "process.user.uid", set_(["process", "user", "uid"], 0.5))
case("type_mount_options", "create", "mounts[0].options", lambda c: c["mounts"][0].update(options="ro"))
case("type_memory_limit", "create", "linux.resources.memory.limit", set_(["linux", "resources"], {"memory": {"limit": "big"}}))
case("type_hostname", "create", "hostname", set_(["hostname"], True))
case("negative_uid", "create", "process.user.uid", set_(["process", "user", "uid"], -1))
case("negative_gid_additional", "create", "process.user.additionalGids", set_(["process", "user", "additionalGids"], [5, -5]))
case("negative_rlimit", "create", "process.rlimits[0].soft", set_(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": -1, "hard": 10}]))
case("negative_console_size", "create", "process.consoleSize", set_(["process", "consoleSize"], {"height": -1, "width": 80}))
case("negative_file_mode", "create", "linux.devices[0].fileMode", set_(["linux", "devices"], [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3, "fileMode": -1}]))
case("rlimit_soft_over_hard", "create", "soft limit 100 exceeds hard limit 10", set_(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 10}]))
case("rlimit_max", "create", "RLIMIT_NOFILE", set_(["process", "rlimits"], [{"type": "RLIMIT_NOFILE", "soft": 18446744073709551615, "hard": 18446744073709551615}]))
case("rlimit_overflow", "create", "process.rlimits[0].hard", raw=full.replace('"cwd": "/"', '"cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 18446744073709551616}]'))
case("rlimit_unknown", "create", "process.rlimits[0].type", set_(["process", "rlimits"], [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]))
case("mount_dest_relative", "create", "mounts[2].destination", lambda c: c["mounts"].append({"destination": "tmp/x", "type": "tmpfs", "source": "tmpfs"}))
case("mount_dest_dotdot", "runs", "", lambda c: c["mounts"].append({"destination": "/../../../../../tmp/husk-hostile-dotdot", "type": "tmpfs", "source": "tmpfs"}))
case("cwd_dotdot", "runs", "", set_(["process", "cwd"], "/../../../../../tmp/husk-hostile-cwd"))
case("cwd_relative", "create", "process.cwd", set_(["process", "cwd"], "tmp"))
case("nul_arg", "create", "process.args[1]", set_(["process", "args"], ["sh", "-c\u0000x", "true"]))
case("nul_env", "create", "process.env[0]", set_(["process", "env"], ["PATH=/bin\u0000LD_PRELOAD=/x"]))
case("nul_cwd", "create", "process.cwd", set_(["process", "cwd"], "/tmp\u0000/x"))
case("nul_mount_dest", "create", "mounts[2].destination", lambda c: c["mounts"].append({"destination": "/mnt\u0000/x", "type": "tmpfs", "source": "tmpfs"}))
case("nul_mount_source", "create", "mounts[2]", lambda c: c["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/tmp\u0000/x", "options": ["bind"]}))
case("nul_hostname", "create", "hostname\tgap: a NUL byte in hostname is not refused (sethostname gets it)", set_(["hostname"], "a\u0000b"))
case("nul_device_path", "create", "linux.devices[0].path\tgap: NUL in linux.devices[].path is not validated; it fails late without naming the field", set_(["linux", "devices"], [{"path": "/dev/x\u0000y", "type": "c", "major": 1, "minor": 3}]))
case("nul_hook_path", "create", "hooks.createRuntime[0]\tgap: NUL in a hook path is not validated up front; it fails after the init is spawned, with a second stderr line from the init", set_(["hooks"], {"createRuntime": [{"path": "/bin/true\u0000x"}]}))
case("rootfs_file", "create", "not a directory", set_(["root", "path"], "rootfs-file"))
case("rootfs_missing", "create", "No such file or directory", set_(["root", "path"], "no-such-rootfs"))
case("rootfs_symlink", "runs", "", set_(["root", "path"], "rootfs-link"))
case("rootfs_dangling", "create", "root.path", set_(["root", "path"], "rootfs-dangling"))
case("missing_process", "create", "process: missing", lambda c: c.pop("process"))
case("missing_args", "create", "process.args", lambda c: c["process"].pop("args"))
case("version_2", "create", "ociVersion", set_(["ociVersion"], "2.0.0"))
case("namespace_unknown", "create", "linux.namespaces[4].type", lambda c: c["linux"]["namespaces"].append({"type": "bogus"}))
case("namespace_duplicate", "create", "listed twice", lambda c: c["linux"]["namespaces"].append({"type": "pid"}))
case("namespace_path_missing", "create", "linux.namespaces[4].path", lambda c: c["linux"]["namespaces"].append({"type": "network", "path": "/nonexistent/ns"}))
case("capability_unknown", "create", "CAP_BOGUS", set_(["process", "capabilities", "bounding"], ["CAP_KILL", "CAP_BOGUS"]))
case("capability_lowercase", "runs", "", set_(["process", "capabilities", "effective"], ["cap_kill"]))
SEC = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
s1 = copy.deepcopy(SEC); s1["syscalls"][0]["action"] = "SCMP_ACT_BOGUS"
case("seccomp_action_unknown", "create", "SCMP_ACT_BOGUS", set_(["linux", "seccomp"], s1))
s2 = copy.deepcopy(SEC); s2["syscalls"][0]["args"] = [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}]
case("seccomp_operator_unknown", "create", "SCMP_CMP_BOGUS", set_(["linux", "seccomp"], s2))
s3 = copy.deepcopy(SEC); s3["defaultAction"] = "SCMP_ACT_NOPE"
case("seccomp_default_unknown", "create", "SCMP_ACT_NOPE", set_(["linux", "seccomp"], s3))
s4 = copy.deepcopy(SEC); s4["syscalls"][0]["args"] = [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]
case("seccomp_arg_index", "create", "index", set_(["linux", "seccomp"], s4))
s5 = copy.deepcopy(SEC); s5["architectures"] = ["SCMP_ARCH_PDP11"]
case("seccomp_arch_unknown", "create", "SCMP_ARCH_PDP11", set_(["linux", "seccomp"], s5))
case("hook_timeout_negative", "create", "must be positive", set_(["hooks"], {"createRuntime": [{"path": "/bin/true", "timeout": -1}]}))
case("hook_timeout_zero", "create", "must be positive", set_(["hooks"], {"createRuntime": [{"path": "/bin/true", "timeout": 0}]}))
case("hook_timeout_huge", "runs", "\tgap: a huge hook timeout panics (Instant + Duration overflow in container/hooks.rs) and aborts create", set_(["hooks"], {"createRuntime": [{"path": "/bin/true", "timeout": 9223372036854775807}]}))
case("hook_relative", "create", "hooks.prestart[0].path", set_(["hooks"], {"prestart": [{"path": "true"}]}))
case("sysctl_not_namespaced", "create", "linux.sysctl.kernel.core_pattern", set_(["linux", "sysctl"], {"kernel.core_pattern": "|/tmp/x"}))
case("sysctl_net_without_netns", "create", "needs a new network namespace", set_(["linux", "sysctl"], {"net.ipv4.ip_forward": "1"}))
case("device_relative", "create", "linux.devices[0].path", set_(["linux", "devices"], [{"path": "dev/x", "type": "c", "major": 1, "minor": 3}]))
case("device_type_unknown", "create", "linux.devices[0].type", set_(["linux", "devices"], [{"path": "/dev/x", "type": "z", "major": 1, "minor": 3}]))
case("idmap_without_userns", "create", "id mappings need a new user namespace", set_(["linux", "uidMappings"], [{"containerID": 0, "hostID": 1000, "size": 1}]))
case("propagation_unknown", "create", "linux.rootfsPropagation", set_(["linux", "rootfsPropagation"], "sideways"))
case("mount_option_unknown_bind", "create", "mounts[2].source", lambda c: c["mounts"].append({"destination": "/mnt", "type": "none", "options": ["rbind"]}))
case("cgroups_path_dotdot", "create", "linux.cgroupsPath", set_(["linux", "cgroupsPath"], "../../../husk-escape"))
deep = "[" * 5000 + "]" * 5000
case("deep_nesting", "runs", "", raw=full.replace('"ociVersion"', '"x-deep": ' + deep + ', "ociVersion"', 1))
case("huge_env", "runs", "", set_(["process", "env"], ["PATH=/bin"] + [f"V{i}=x" for i in range(100000)]))
case("huge_capability_list", "runs", "", set_(["process", "capabilities", "bounding"], CAPS * 5000))
def unknown(c):
    c["x-vendor"] = {"a": [1, {"b": None}]}
    c["process"]["futureField"] = 42
    c["process"]["user"]["sid"] = "S-1"
    c["mounts"][0]["idmap"] = {"x": 1}
    c["linux"]["newThing"] = []
    c["linux"]["namespaces"][0]["flags"] = 3
case("unknown_properties", "runs", "", unknown)

PBASE = copy.deepcopy(BASE["process"])
def pcase(name, kind, expect, mut=None, raw=None):
    c = copy.deepcopy(PBASE)
    if raw is None:
        mut(c)
        raw = json.dumps(c, indent=None if len(json.dumps(c)) > 100000 else 1)
    with open(os.path.join(HERE, name + ".json"), "w") as f:
        f.write(raw)
    cases.append(f"{name}.json\t{kind}\t{expect}")
pfull = json.dumps(PBASE)
pcase("process_truncated", "exec", "EOF while parsing", raw=pfull[:40])
pcase("process_nul_arg", "exec", "process.args[0]", lambda c: c.update(args=["s\u0000h"]))
pcase("process_relative_cwd", "exec", "process.cwd", lambda c: c.update(cwd="."))
pcase("process_negative_uid", "exec", "user.uid", lambda c: c["user"].update(uid=-1))
pcase("process_unknown_capability", "exec", "CAP_NOPE", lambda c: c["capabilities"].update(effective=["CAP_NOPE"]))
pcase("process_rlimit_soft_over_hard", "exec", "exceeds hard limit", lambda c: c.update(rlimits=[{"type": "RLIMIT_CORE", "soft": 2, "hard": 1}]))
pcase("process_empty_args", "exec", "process.args", lambda c: c.update(args=[]))
pcase("process_env_no_equals", "exec", "process.env[1]", lambda c: c.update(env=["PATH=/bin", "JUSTAKEY"]))
pcase("process_unknown_properties", "exec-runs", "", lambda c: c.update(future={"x": [1]}, user={"uid": 0, "gid": 0, "umask2": 1}))
pcase("process_cwd_dotdot", "exec-runs", "", lambda c: c.update(cwd="/../../../.."))
pcase("process_huge_env", "exec-runs", "", lambda c: c.update(env=["PATH=/bin"] + [f"V{i}=y" for i in range(100000)]))

with open(os.path.join(HERE, "cases.txt"), "w") as f:
    f.write("# file\tkind\texpected substring of the one-line error (generated by gen.py)\n")
    f.write("\n".join(cases) + "\n")
print(len(cases), "cases")
