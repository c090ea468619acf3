//! Unit tests against a fake cgroupfs: a temporary directory laid out like
//! cgroupfs (plain files), described by a generated mountinfo text that goes
//! through the real parsing and planning. Assertions are on the exact
//! (file, bytes) writes, taken from the fs journal.

use std::fs as sfs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use super::fs::take_journal;
use super::{plan_on, validate, CgroupPaths, Host, Manager};

/// A temporary fake cgroupfs; removed on drop.
pub(crate) struct Fake {
    pub root: PathBuf,
    mountinfo: String,
    own: String,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = sfs::remove_dir_all(&self.root);
    }
}

impl Fake {
    /// `v1`: comma-joined controller groups ("cpu,cpuacct"); `v2`: the
    /// controllers of a cgroup2 mount named `unified`, if any.
    pub fn new(name: &str, v1: &[&str], v2: Option<&[&str]>) -> Fake {
        let root = std::env::temp_dir().join(format!("husk-fakecg-{}-{name}", std::process::id()));
        let _ = sfs::remove_dir_all(&root);
        let mut mi = String::new();
        let mut own = String::new();
        for (i, g) in v1.iter().enumerate() {
            let mp = root.join(g);
            sfs::create_dir_all(&mp).unwrap();
            sfs::write(mp.join("cgroup.procs"), "").unwrap();
            mi += &format!(
                "{} 1 0:{} / {} rw - cgroup cgroup rw,{g}\n",
                30 + i,
                30 + i,
                mp.display()
            );
            own += &format!("{}:{g}:/\n", i + 1);
        }
        if let Some(ctrls) = v2 {
            let mp = root.join("unified");
            sfs::create_dir_all(&mp).unwrap();
            sfs::write(mp.join("cgroup.controllers"), ctrls.join(" ")).unwrap();
            sfs::write(mp.join("cgroup.subtree_control"), "").unwrap();
            mi += &format!("99 1 0:99 / {} rw - cgroup2 cgroup2 rw\n", mp.display());
            own += "0::/\n";
        }
        Fake {
            root,
            mountinfo: mi,
            own,
        }
    }

    pub fn host(&self) -> Host {
        Host::parse(&self.mountinfo, &self.own).unwrap()
    }

    pub fn plan(&self, path: Option<&str>) -> CgroupPaths {
        plan_on(&self.host(), path, "c1").unwrap()
    }

    /// Write files (name, content) into `dir`, creating it.
    pub fn files(&self, dir: &Path, files: &[(&str, &str)]) {
        sfs::create_dir_all(dir).unwrap();
        for (f, c) in files {
            sfs::write(dir.join(f), c).unwrap();
        }
    }

    /// A manager whose leaf dirs exist with `files` (the kernel would
    /// populate them); the journal starts empty.
    pub fn manager(&self, files: &[(&str, &str)]) -> Manager {
        let p = self.plan(None);
        for h in p.hierarchies() {
            self.files(&h.dir, files);
        }
        let _ = take_journal();
        Manager::new(p)
    }

    /// The journal, paths made relative to the fake root.
    pub fn writes(&self) -> Vec<(String, String)> {
        take_journal()
            .into_iter()
            .map(|(p, v)| (p.strip_prefix(&self.root).unwrap().display().to_string(), v))
            .collect()
    }
}

fn res(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn w(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

const MEMFILES: &[(&str, &str)] = &[
    ("memory.limit_in_bytes", "9223372036854771712"),
    ("memory.memsw.limit_in_bytes", ""),
    ("memory.soft_limit_in_bytes", ""),
    ("memory.oom_control", ""),
    ("memory.swappiness", ""),
];

#[test]
fn v1_memory_writes_in_runc_order() {
    let f = Fake::new("v1mem", &["memory"], None);
    let m = f.manager(MEMFILES);
    let r = res(
        r#"{"memory":{"limit":67108864,"swap":134217728,"reservation":33554432,
        "swappiness":10,"disableOOMKiller":true}}"#,
    );
    m.apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("memory/c1/memory.limit_in_bytes", "67108864"),
            ("memory/c1/memory.memsw.limit_in_bytes", "134217728"),
            ("memory/c1/memory.soft_limit_in_bytes", "33554432"),
            ("memory/c1/memory.oom_control", "1"),
            ("memory/c1/memory.swappiness", "10"),
        ])
    );
    // Raising above the current limit: memory+swap goes first.
    m.apply(&res(r#"{"memory":{"limit":268435456,"swap":536870912}}"#))
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("memory/c1/memory.memsw.limit_in_bytes", "536870912"),
            ("memory/c1/memory.limit_in_bytes", "268435456"),
        ])
    );
    let e = m
        .apply(&res(r#"{"memory":{"swappiness":101}}"#))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.memory.swappiness: 101 is out of range (0-100)"
    );
}

#[test]
fn v1_cpu_cpuset_pids() {
    let f = Fake::new("v1cpu", &["cpu,cpuacct", "cpuset", "pids"], None);
    f.files(
        &f.root.join("cpuset"),
        &[("cpuset.cpus", "0-3\n"), ("cpuset.mems", "0\n")],
    );
    let mut m = f.manager(&[
        ("cpu.shares", ""),
        ("cpu.cfs_quota_us", ""),
        ("cpu.cfs_period_us", ""),
        ("cpu.rt_period_us", ""),
        ("cpu.rt_runtime_us", ""),
        ("cpuset.cpus", ""),
        ("cpuset.mems", ""),
        ("pids.max", ""),
    ]);
    // A new cpuset cgroup gets its parent's cpus and mems.
    m.create().unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("cpuset/c1/cpuset.cpus", "0-3"),
            ("cpuset/c1/cpuset.mems", "0")
        ])
    );
    let r = res(
        r#"{"cpu":{"shares":512,"quota":50000,"period":100000,"realtimePeriod":1000000,
        "realtimeRuntime":950000,"cpus":"1","mems":"0"},"pids":{"limit":100}}"#,
    );
    m.apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("cpu,cpuacct/c1/cpu.shares", "512"),
            ("cpu,cpuacct/c1/cpu.cfs_period_us", "100000"),
            ("cpu,cpuacct/c1/cpu.cfs_quota_us", "50000"),
            ("cpu,cpuacct/c1/cpu.rt_period_us", "1000000"),
            ("cpu,cpuacct/c1/cpu.rt_runtime_us", "950000"),
            ("cpuset/c1/cpuset.cpus", "1"),
            ("cpuset/c1/cpuset.mems", "0"),
            ("pids/c1/pids.max", "100"),
        ])
    );
    m.apply(&res(r#"{"pids":{"limit":-1}}"#)).unwrap();
    assert_eq!(f.writes(), w(&[("pids/c1/pids.max", "max")]));
}

/// Note: oci-spec 0.7.1 reads the IOPS throttles from `throttleReadIopsDevice`
/// and `throttleWriteIopsDevice`, not the runtime spec's `…IOPSDevice`
/// spelling (which it silently drops): a spec/ matter, reported.
#[test]
fn v1_blkio_cfq_bfq_and_throttle_only_hosts() {
    let r = res(r#"{"blockIO":{"weight":500,"leafWeight":300,
        "weightDevice":[{"major":8,"minor":0,"weight":600,"leafWeight":200}],
        "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
        "throttleWriteIopsDevice":[{"major":8,"minor":16,"rate":100}]}}"#);
    let cfq = [
        "blkio.weight",
        "blkio.leaf_weight",
        "blkio.weight_device",
        "blkio.leaf_weight_device",
        "blkio.throttle.read_bps_device",
        "blkio.throttle.write_bps_device",
        "blkio.throttle.read_iops_device",
        "blkio.throttle.write_iops_device",
    ];
    let f = Fake::new("cfq", &["blkio"], None);
    f.files(&f.root.join("blkio"), &cfq.map(|n| (n, "")));
    let m = f.manager(&cfq.map(|n| (n, "")));
    assert_eq!(validate(&r, m.paths()).unwrap(), Vec::<String>::new());
    m.apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("blkio/c1/blkio.weight", "500"),
            ("blkio/c1/blkio.leaf_weight", "300"),
            ("blkio/c1/blkio.weight_device", "8:0 600"),
            ("blkio/c1/blkio.leaf_weight_device", "8:0 200"),
            ("blkio/c1/blkio.throttle.read_bps_device", "8:0 1048576"),
            ("blkio/c1/blkio.throttle.write_iops_device", "8:16 100"),
        ])
    );

    // This machine: BFQ weights (not at the root), no leaf weights.
    let f = Fake::new("bfq", &["blkio"], None);
    let throttle = &cfq[4..];
    let root_files: Vec<(&str, &str)> = throttle
        .iter()
        .map(|n| (*n, ""))
        .chain([("blkio.bfq.io_service_bytes", "")])
        .collect();
    f.files(&f.root.join("blkio"), &root_files);
    let leaf: Vec<(&str, &str)> = root_files
        .iter()
        .cloned()
        .chain([("blkio.bfq.weight", ""), ("blkio.bfq.weight_device", "")])
        .collect();
    let m = f.manager(&leaf);
    let e = validate(&r, m.paths()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.blockIO.leafWeight: the blkio controller has no blkio.leaf_weight on this host"
    );
    let e = m.apply(&r).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.blockIO.leafWeight: the blkio controller has no blkio.leaf_weight on this host"
    );
    assert_eq!(f.writes(), w(&[("blkio/c1/blkio.bfq.weight", "500")]));
    let weight_only =
        res(r#"{"blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":600}]}}"#);
    validate(&weight_only, m.paths()).unwrap();
    m.apply(&weight_only).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("blkio/c1/blkio.bfq.weight", "500"),
            ("blkio/c1/blkio.bfq.weight_device", "8:0 600")
        ])
    );

    // Throttle files only: a weight is refused before and during apply.
    let f = Fake::new("thr", &["blkio"], None);
    f.files(
        &f.root.join("blkio"),
        &throttle.iter().map(|n| (*n, "")).collect::<Vec<_>>(),
    );
    let m = f.manager(&throttle.iter().map(|n| (*n, "")).collect::<Vec<_>>());
    let e = validate(&weight_only, m.paths()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.blockIO.weight: the blkio controller has no blkio.weight on this host"
    );
    let e = m.apply(&weight_only).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.blockIO.weight: the blkio controller has no blkio.weight or blkio.bfq.weight on this host"
    );
}

#[test]
fn v1_net_cls_net_prio_hugetlb_devices() {
    let f = Fake::new(
        "v1net",
        &["net_cls", "net_prio", "hugetlb", "devices"],
        None,
    );
    let m = f.manager(&[
        ("net_cls.classid", ""),
        ("net_prio.ifpriomap", ""),
        ("hugetlb.2MB.limit_in_bytes", ""),
        ("devices.allow", ""),
        ("devices.deny", ""),
    ]);
    let r = res(
        r#"{"network":{"classID":1048577,"priorities":[{"name":"eth0","priority":5},{"name":"lo","priority":1}]},
        "hugepageLimits":[{"pageSize":"2MB","limit":4194304}],
        "devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"},
                   {"allow":true,"type":"c","major":136,"access":"rwm"},{"allow":false,"type":"b","major":8,"minor":0}]}"#,
    );
    validate(&r, m.paths()).unwrap();
    m.apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("hugetlb/c1/hugetlb.2MB.limit_in_bytes", "4194304"),
            ("net_cls/c1/net_cls.classid", "1048577"),
            ("net_prio/c1/net_prio.ifpriomap", "eth0 5"),
            ("net_prio/c1/net_prio.ifpriomap", "lo 1"),
            ("devices/c1/devices.deny", "a *:* rwm"),
            ("devices/c1/devices.allow", "c 1:3 rw"),
            ("devices/c1/devices.allow", "c 136:* rwm"),
            ("devices/c1/devices.deny", "b 8:0 rwm"),
        ])
    );
    // A hugetlb page size the host lacks.
    let e = m
        .apply(&res(r#"{"hugepageLimits":[{"pageSize":"1GB","limit":1}]}"#))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.hugepageLimits[1GB]: the hugetlb controller has no hugetlb.1GB.limit_in_bytes on this host"
    );
}

/// The shape of this machine: net_cls/net_prio absent, hugetlb only in
/// `unified`, the caller's memory cgroup below the root.
fn this_host(name: &str) -> Fake {
    let v1 = [
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "devices",
        "freezer",
        "blkio",
        "pids",
        "name=systemd",
    ];
    Fake::new(name, &v1, Some(&["hugetlb"]))
}

#[test]
fn hybrid_routes_each_controller_and_joins_every_hierarchy() {
    let f = this_host("hybrid");
    let m = f.manager(&[
        ("hugetlb.2MB.max", ""),
        ("memory.limit_in_bytes", "0"),
        ("cgroup.procs", ""),
    ]);
    f.files(&f.root.join("unified/c1"), &[("cgroup.controllers", "")]);
    let r = res(
        r#"{"memory":{"limit":1048576},"hugepageLimits":[{"pageSize":"2MB","limit":2097152}],
        "unified":{"hugetlb.2MB.max":"4194304"}}"#,
    );
    validate(&r, m.paths()).unwrap();
    m.apply(&r).unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("memory/c1/memory.limit_in_bytes", "1048576"),
            ("unified/cgroup.subtree_control", "+hugetlb"),
            ("unified/c1/hugetlb.2MB.max", "2097152"),
            ("unified/c1/hugetlb.2MB.max", "4194304"),
        ])
    );
    m.add_pid(4242).unwrap();
    let mut joined: Vec<String> = f
        .writes()
        .into_iter()
        .map(|(p, v)| format!("{p}={v}"))
        .collect();
    joined.sort();
    let mut want: Vec<String> = [
        "blkio",
        "cpu",
        "cpuacct",
        "cpuset",
        "devices",
        "freezer",
        "memory",
        "name=systemd",
        "pids",
        "unified",
    ]
    .iter()
    .map(|d| format!("{d}/c1/cgroup.procs=4242"))
    .collect();
    want.sort();
    assert_eq!(joined, want);

    for (json, msg) in [
        (
            r#"{"network":{"classID":1}}"#,
            "linux.resources.network.classID: the net_cls controller (cgroup v1 only) is not mounted on this host",
        ),
        (
            r#"{"network":{"priorities":[{"name":"eth0","priority":1}]}}"#,
            "linux.resources.network.priorities: the net_prio controller (cgroup v1 only) is not mounted on this host",
        ),
        (
            r#"{"unified":{"memory.high":"1"}}"#,
            "linux.resources.unified[memory.high]: the memory controller is a cgroup v1 one on this hybrid host",
        ),
    ] {
        assert_eq!(validate(&res(json), m.paths()).unwrap_err().to_string(), msg);
        assert_eq!(m.apply(&res(json)).unwrap_err().to_string(), msg);
    }
    let warn = validate(&res(r#"{"memory":{"kernel":1048576}}"#), m.paths()).unwrap();
    assert_eq!(warn.len(), 1, "{warn:?}");
    assert!(warn[0].starts_with("linux.resources.memory.kernel is ignored"));
}

#[test]
fn unified_is_refused_on_v1() {
    let f = Fake::new("v1uni", &["memory"], None);
    let m = f.manager(&[]);
    let r = res(r#"{"unified":{"memory.high":"1"}}"#);
    let msg = "linux.resources.unified: needs cgroup v2, and this host has only cgroup v1";
    assert_eq!(validate(&r, m.paths()).unwrap_err().to_string(), msg);
    assert_eq!(m.apply(&r).unwrap_err().to_string(), msg);
}

const V2CTRLS: &[&str] = &["cpuset", "cpu", "io", "memory", "hugetlb", "pids"];

fn v2_manager(f: &Fake) -> Manager {
    let mut p = f.plan(Some("pod/c1"));
    let files: Vec<(&str, &str)> = [
        "memory.max",
        "memory.low",
        "memory.swap.max",
        "cpu.weight",
        "cpu.max",
        "cpu.idle",
        "cpuset.cpus",
        "cpuset.mems",
        "pids.max",
        "io.weight",
        "io.max",
        "hugetlb.2MB.max",
        "hugetlb.2MB.rsvd.max",
        "memory.high",
        "cgroup.freeze",
    ]
    .iter()
    .map(|n| (*n, ""))
    .collect();
    let u = p.unified.clone().unwrap();
    // What the kernel shows in the intermediate cgroup the planner creates.
    f.files(
        &u.mount.join("pod"),
        &[
            ("cgroup.controllers", &V2CTRLS.join(" ")),
            ("cgroup.subtree_control", ""),
        ],
    );
    f.files(&u.dir, &files);
    f.files(&u.dir, &[("cgroup.events", "populated 1\nfrozen 1\n")]);
    p.created.clear();
    take_journal();
    Manager::new(p)
}

#[test]
fn v2_create_enables_controllers_from_the_root_down() {
    let f = Fake::new("v2create", &[], Some(V2CTRLS));
    let mut m = v2_manager(&f);
    m.create().unwrap();
    let mut want = Vec::new();
    for dir in ["unified", "unified/pod"] {
        for c in V2CTRLS {
            want.push((format!("{dir}/cgroup.subtree_control"), format!("+{c}")));
        }
    }
    assert_eq!(f.writes(), want);
}

#[test]
fn v2_writers() {
    let f = Fake::new("v2w", &[], Some(V2CTRLS));
    let m = v2_manager(&f);
    let r = res(
        r#"{"memory":{"limit":67108864,"swap":100663296,"reservation":33554432},
        "cpu":{"shares":1024,"quota":50000,"period":100000,"cpus":"0-1","mems":"0"},
        "pids":{"limit":64},
        "blockIO":{"weight":500,"weightDevice":[{"major":8,"minor":0,"weight":1000}],
          "throttleReadBpsDevice":[{"major":8,"minor":0,"rate":1048576}],
          "throttleWriteIopsDevice":[{"major":8,"minor":0,"rate":120}]},
        "hugepageLimits":[{"pageSize":"2MB","limit":2097152}],
        "unified":{"memory.high":"50331648"}}"#,
    );
    assert_eq!(validate(&r, m.paths()).unwrap(), Vec::<String>::new());
    m.apply(&r).unwrap();
    let p = "unified/pod/c1/";
    let want: Vec<(String, String)> = [
        ("memory.swap.max", "33554432"),
        ("memory.max", "67108864"),
        ("memory.low", "33554432"),
        ("cpu.weight", "100"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("pids.max", "64"),
        ("io.weight", "4950"),
        ("io.weight", "8:0 10000"),
        ("io.max", "8:0 rbps=1048576"),
        ("io.max", "8:0 wiops=120"),
        ("hugetlb.2MB.max", "2097152"),
        ("hugetlb.2MB.rsvd.max", "2097152"),
        ("memory.high", "50331648"),
    ]
    .iter()
    .map(|(a, b)| (format!("{p}{a}"), b.to_string()))
    .collect();
    assert_eq!(f.writes(), want);

    // Unlimited memory with swap unset: both max; a quota of -1: "max".
    m.apply(&res(r#"{"memory":{"limit":-1},"cpu":{"quota":-1}}"#))
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("unified/pod/c1/memory.swap.max", "max"),
            ("unified/pod/c1/memory.max", "max"),
            ("unified/pod/c1/cpu.max", "max"),
        ])
    );
    // memory == memory+swap: no swap at all.
    m.apply(&res(r#"{"memory":{"limit":1048576,"swap":1048576}}"#))
        .unwrap();
    assert_eq!(
        f.writes(),
        w(&[
            ("unified/pod/c1/memory.swap.max", "0"),
            ("unified/pod/c1/memory.max", "1048576")
        ])
    );
    let e = m
        .apply(&res(r#"{"cpu":{"realtimeRuntime":1000}}"#))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.cpu.realtimeRuntime/realtimePeriod: cgroup v2 has no realtime cpu limits"
    );
    let e = validate(&res(r#"{"memory":{"limit":2048,"swap":1024}}"#), m.paths()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.memory.swap: memory+swap must be >= the memory limit"
    );
    let warn = validate(
        &res(r#"{"memory":{"swappiness":10,"disableOOMKiller":true}}"#),
        m.paths(),
    )
    .unwrap();
    assert_eq!(warn.len(), 2, "{warn:?}");
    // The fake cgroup.events already says frozen 1.
    m.freeze().unwrap();
    assert_eq!(f.writes(), w(&[("unified/pod/c1/cgroup.freeze", "1")]));
    assert!(m.is_frozen().unwrap());
}

#[test]
fn shares_to_weight_matches_runc() {
    use super::shares_to_weight as s2w;
    assert_eq!(s2w(0), 0);
    assert_eq!(s2w(2), 1);
    assert_eq!(s2w(1024), 100, "the v1 default maps to the v2 default");
    assert_eq!(s2w(262_144), 10_000);
    let mut last = 0;
    for s in (2..262_144).step_by(997) {
        assert!(s2w(s) >= last && s2w(s) <= 10_000);
        last = s2w(s);
    }
    assert_eq!(super::blkio_weight_to_io(10), 1);
    assert_eq!(super::blkio_weight_to_io(1000), 10_000);
}

#[test]
fn v2_stats_from_the_fake_cgroupfs() {
    let f = Fake::new("v2stats", &[], Some(V2CTRLS));
    let m = v2_manager(&f);
    let d = m.paths().unified.clone().unwrap().dir;
    f.files(
        &d,
        &[
            ("cpu.stat", "usage_usec 300\nuser_usec 200\nsystem_usec 100\nnr_periods 5\nnr_throttled 2\nthrottled_usec 7\n"),
            ("memory.max", "max\n"),
            ("memory.current", "4096\n"),
            ("memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"),
            ("memory.swap.max", "0\n"),
            ("memory.swap.current", "0\n"),
            ("memory.stat", "anon 1024\nfile 2048\n"),
            ("pids.current", "2\n"),
            ("pids.max", "max\n"),
            ("io.stat", "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n"),
            ("hugetlb.2MB.current", "2097152\n"),
            ("hugetlb.2MB.events", "max 4\n"),
        ],
    );
    let s = m.stats().unwrap();
    assert_eq!(
        (s.cpu.usage.total, s.cpu.usage.user, s.cpu.usage.kernel),
        (300_000, 200_000, 100_000)
    );
    assert_eq!(
        (
            s.cpu.throttling.periods,
            s.cpu.throttling.throttled_periods,
            s.cpu.throttling.throttled_time
        ),
        (5, 2, 7000)
    );
    assert_eq!(
        (
            s.memory.usage.usage,
            s.memory.usage.limit,
            s.memory.usage.failcnt
        ),
        (4096, u64::MAX, 3)
    );
    assert_eq!(s.memory.cache, 2048);
    assert_eq!((s.pids.current, s.pids.limit), (2, 0));
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.blkio.io_serviced_recursive[1].op, "Write");
    assert_eq!(s.hugetlb["2MB"].usage, 2_097_152);
    assert_eq!(s.hugetlb["2MB"].failcnt, 4);
    let j = serde_json::to_string(&s).unwrap();
    assert!(
        j.contains(r#""throttling":{"periods":5,"throttledPeriods":2,"throttledTime":7000}"#),
        "{j}"
    );
    assert!(j.contains(r#"{"major":8,"op":"Read","value":10}"#), "{j}");
}

#[test]
fn v1_blkio_stats_fall_back_to_the_throttle_files() {
    let f = Fake::new("v1stats", &["blkio"], None);
    let m = f.manager(&[(
        "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\nTotal 12288\n",
    )]);
    let s = m.stats().unwrap();
    let e = &s.blkio.io_service_bytes_recursive;
    assert_eq!(e.len(), 3, "the Total line is not a device: {e:?}");
    assert_eq!(
        (e[1].major, e[1].op.as_str(), e[1].value),
        (8, "Write", 8192)
    );
}

/// What a container's `cgroup` mount is built from: each hierarchy once,
/// co-mounted controllers together (the options of a fresh v1 mount),
/// the cgroup2 one last, each with the container's directory.
#[test]
fn views_group_comounted_controllers() {
    let f = Fake::new(
        "views",
        &["cpu,cpuacct", "name=systemd"],
        Some(&["hugetlb"]),
    );
    let v = f.plan(Some("/pod/c1")).views();
    let got: Vec<(String, String, bool, String)> = v
        .iter()
        .map(|v| {
            let rel = |p: &Path| p.strip_prefix(&f.root).unwrap().display().to_string();
            (rel(&v.mount), rel(&v.dir), v.v2, v.options.clone())
        })
        .collect();
    let s = |x: &str| x.to_string();
    assert_eq!(
        got,
        [
            (
                s("cpu,cpuacct"),
                s("cpu,cpuacct/pod/c1"),
                false,
                s("cpu,cpuacct")
            ),
            (
                s("name=systemd"),
                s("name=systemd/pod/c1"),
                false,
                s("name=systemd")
            ),
            (s("unified"), s("unified/pod/c1"), true, s("")),
        ]
    );
}
