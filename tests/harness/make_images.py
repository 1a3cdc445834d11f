#!/usr/bin/python3
"""Write the end-to-end test images as OCI image layouts, without any container engine.

    make_images.py OUTDIR

creates (each only if missing, so reruns are instant):
    OUTDIR/hello  tag latest: OCI image index, linux/amd64 + linux/arm64/v8, one layer each
    OUTDIR/multi  tag latest: linux/amd64 image with 3 layers
    OUTDIR/big    tag latest: linux/amd64 image with one ~20 MiB incompressible layer

    make_images.py --unique SEED DIR [BIG_MIB]

writes one image whose three layers carry SEED (and BIG_MIB MiB of random data), for tests
that need content nobody has pulled before.

Everything is deterministic (fixed mtimes, gzip mtime 0, seeded random data), so the
digests are the same on every machine and every rebuild.
"""
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sys
import tarfile

EPOCH = 1700000000  # fixed mtime for files
CREATED = "2023-11-14T22:13:20Z"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


class Layout:
    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)

    def put(self, data: bytes) -> str:
        hexd = hashlib.sha256(data).hexdigest()
        p = os.path.join(self.path, "blobs", "sha256", hexd)
        if not os.path.exists(p):
            with open(p + ".tmp", "wb") as f:
                f.write(data)
            os.replace(p + ".tmp", p)
        return "sha256:" + hexd

    def put_json(self, obj) -> (str, int):
        data = json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()
        return self.put(data), len(data)

    def finish(self, top_descriptor, tag="latest"):
        desc = dict(top_descriptor)
        desc["annotations"] = {"org.opencontainers.image.ref.name": tag}
        with open(os.path.join(self.path, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        with open(os.path.join(self.path, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [desc]}, f)


def make_tar(files):
    """files: list of (path, bytes or None for a directory, mode). Returns the tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path, content, mode in files:
            ti = tarfile.TarInfo(path)
            ti.mtime = EPOCH
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mode = mode
            if content is None:
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            else:
                ti.size = len(content)
                tf.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


def add_layer(layout, files, level=6):
    raw = make_tar(files)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=level) as g:
        g.write(raw)
    data = gz.getvalue()
    digest = layout.put(data)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    return {"mediaType": MT_LAYER, "digest": digest, "size": len(data)}, diff_id


def add_image(layout, arch, layers_files, variant=None, cmd=("/bin/hello",)):
    layers, diff_ids, history = [], [], []
    for i, files in enumerate(layers_files):
        desc, diff_id = add_layer(layout, files)
        layers.append(desc)
        diff_ids.append(diff_id)
        history.append({"created": CREATED, "created_by": "rp-e2e make_images.py layer %d" % i})
    config = {
        "created": CREATED,
        "architecture": arch,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": list(cmd),
            "WorkingDir": "/",
            "Labels": {"org.example.rp-e2e": "1"},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if variant:
        config["variant"] = variant
    cdigest, csize = layout.put_json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": cdigest, "size": csize},
        "layers": layers,
    }
    mdigest, msize = layout.put_json(manifest)
    platform = {"architecture": arch, "os": "linux"}
    if variant:
        platform["variant"] = variant
    return {"mediaType": MT_MANIFEST, "digest": mdigest, "size": msize, "platform": platform}


def base_files(tag):
    hello = ("#!/bin/sh\necho 'hello from rp-e2e %s'\n" % tag).encode()
    return [
        ("bin", None, 0o755),
        ("bin/hello", hello, 0o755),
        ("etc", None, 0o755),
        ("etc/os-release", b'NAME="rp-e2e"\nID=rp-e2e\nVERSION_ID="1"\n', 0o644),
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
        ("etc/group", b"root:x:0:\n", 0o644),
        ("tmp", None, 0o1777),
        ("hello.txt", ("hello %s\n" % tag).encode(), 0o644),
    ]


def build_hello(path):
    lay = Layout(path)
    amd = add_image(lay, "amd64", [base_files("amd64")])
    arm = add_image(lay, "arm64", [base_files("arm64")], variant="v8")
    index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": [amd, arm]}
    idigest, isize = lay.put_json(index)
    lay.finish({"mediaType": MT_INDEX, "digest": idigest, "size": isize})


def build_multi(path):
    lay = Layout(path)
    layers = [
        base_files("multi"),
        [("usr", None, 0o755), ("usr/share", None, 0o755),
         ("usr/share/layer2.txt", b"second layer\n" * 50, 0o644)],
        [("opt", None, 0o755), ("opt/layer3.txt", b"third layer\n" * 80, 0o644),
         ("hello.txt", b"hello multi, overwritten by layer 3\n", 0o644)],
    ]
    img = add_image(lay, "amd64", layers)
    lay.finish({k: img[k] for k in ("mediaType", "digest", "size")})


def build_big(path, size=20 * 1024 * 1024):
    lay = Layout(path)
    rnd = random.Random(20240101)
    data = rnd.randbytes(size)
    layers = [base_files("big") + [("data", None, 0o755), ("data/random.bin", data, 0o644)]]
    img = add_image(lay, "amd64", layers)
    lay.finish({k: img[k] for k in ("mediaType", "digest", "size")})


def build_unique(path, seed, big_mib=0):
    """Three layers no other image has (they carry `seed`), the third of `big_mib` MiB of
    seeded random data if asked: content that no client or cache has seen before."""
    lay = Layout(path)
    rnd = random.Random(seed)
    tag = seed.encode()
    layers = [
        base_files("unique"),
        [("seed.txt", b"layer of " + tag + b"\n", 0o644)],
        [("data", None, 0o755),
         ("data/random.bin", rnd.randbytes(big_mib << 20) if big_mib else tag * 100, 0o644)],
    ]
    img = add_image(lay, "amd64", layers)
    lay.finish({k: img[k] for k in ("mediaType", "digest", "size")})


def main():
    if len(sys.argv) in (4, 5) and sys.argv[1] == "--unique":
        # make_images.py --unique SEED DIR [BIG_MIB]
        big = int(sys.argv[4]) if len(sys.argv) == 5 else 0
        build_unique(sys.argv[3], sys.argv[2], big)
        return
    if len(sys.argv) != 2:
        sys.exit("usage: make_images.py OUTDIR | make_images.py --unique SEED DIR [BIG_MIB]")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, fn in (("hello", build_hello), ("multi", build_multi), ("big", build_big)):
        path = os.path.join(out, name)
        if os.path.exists(os.path.join(path, "index.json")):
            continue
        tmp = path + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        fn(tmp)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(tmp, path)
        print("built image layout %s" % path)


if __name__ == "__main__":
    main()
