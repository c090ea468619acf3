#!/usr/bin/env python3
"""Build an OCI image-layout tarball from a root filesystem directory.

    oci-image.py ROOTFS OUT.tar [--ref localhost/husk-busybox:test]
                 [--cmd /bin/sh ...]

Python 3 stdlib only. The tarball holds:

    oci-layout                      {"imageLayoutVersion": "1.0.0"}
    index.json                      one manifest, tagged with the ref
                                    (org.opencontainers.image.ref.name)
    blobs/sha256/<layer>            the rootfs as one gzipped layer
    blobs/sha256/<config>           image config: linux/amd64, rootfs.diff_ids
                                    (sha256 of the uncompressed layer tar)
    blobs/sha256/<manifest>

The layer is reproducible: entries sorted, owner 0:0, mtime 0. Files, dirs,
symlinks and hard links are kept; device nodes and sockets are skipped (a
container gets its /dev from the runtime).
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def layer_tar(rootfs):
    """The rootfs as an uncompressed tar (bytes)."""
    buf = io.BytesIO()
    seen = {}  # (dev, ino) -> arcname, for hard links
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, rootfs)
            entries = [] if rel_dir == "." else [(dirpath, rel_dir)]
            # os.walk lists symlinks to directories in dirnames (it does not
            # follow them): they are entries here, not walked.
            for name in sorted(filenames) + [d for d in dirnames
                                             if os.path.islink(os.path.join(dirpath, d))]:
                entries.append((os.path.join(dirpath, name),
                                os.path.normpath(os.path.join(rel_dir, name))))
            for path, arc in entries:
                st = os.lstat(path)
                if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)
                        or stat.S_ISLNK(st.st_mode)):
                    continue
                ti = tarfile.TarInfo(arc)
                ti.mode = stat.S_IMODE(st.st_mode)
                ti.uid = ti.gid = 0
                ti.uname = ti.gname = "root"
                ti.mtime = 0
                if stat.S_ISDIR(st.st_mode):
                    ti.type = tarfile.DIRTYPE
                    tar.addfile(ti)
                elif stat.S_ISLNK(st.st_mode):
                    ti.type = tarfile.SYMTYPE
                    ti.linkname = os.readlink(path)
                    tar.addfile(ti)
                else:
                    key = (st.st_dev, st.st_ino)
                    if st.st_nlink > 1 and key in seen:
                        ti.type = tarfile.LNKTYPE
                        ti.linkname = seen[key]
                        tar.addfile(ti)
                        continue
                    seen[key] = arc
                    ti.size = st.st_size
                    with open(path, "rb") as f:
                        tar.addfile(ti, f)
    return buf.getvalue()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def add_bytes(tar, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    ti.mtime = 0
    tar.addfile(ti, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rootfs")
    ap.add_argument("out")
    ap.add_argument("--ref", default="localhost/husk-busybox:test")
    ap.add_argument("--cmd", nargs="+", default=["/bin/sh"])
    args = ap.parse_args()

    if not os.path.isdir(args.rootfs):
        sys.exit(f"oci-image.py: {args.rootfs}: not a directory")

    raw = layer_tar(args.rootfs)
    diff_id = "sha256:" + sha256(raw)
    layer = gzip.compress(raw, mtime=0)
    layer_digest = sha256(layer)

    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": args.cmd,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "integration/oci-image.py"}],
    }, sort_keys=True).encode()
    config_digest = sha256(config)

    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": "sha256:" + config_digest,
                   "size": len(config)},
        "layers": [{"mediaType": MT_LAYER, "digest": "sha256:" + layer_digest,
                    "size": len(layer)}],
    }, sort_keys=True).encode()
    manifest_digest = sha256(manifest)

    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MT_MANIFEST,
            "digest": "sha256:" + manifest_digest,
            "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": args.ref},
        }],
    }, sort_keys=True).encode()

    with tarfile.open(args.out, "w", format=tarfile.PAX_FORMAT) as out:
        add_bytes(out, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes(out, "index.json", index)
        for digest, data in ((layer_digest, layer), (config_digest, config),
                             (manifest_digest, manifest)):
            add_bytes(out, f"blobs/sha256/{digest}", data)
    print(f"{args.out}: {args.ref} manifest sha256:{manifest_digest}")


if __name__ == "__main__":
    main()
