"""scripts/controlplane.sh - a real Kubernetes control plane, built from the Go module proxy, for the
tests that run `pulumi up` against live API servers (tests/cluster/) and for `make up-cluster`.

Usage:
  bash scripts/controlplane.sh                   # ensure the binaries; progress and build times on stderr
  source "$(bash scripts/controlplane.sh --print-env-file)"
                                                 # same, but stdout is only the env file path
  bash scripts/controlplane.sh --help

What is built (pins below), all with CGO_ENABLED=0 and -trimpath:
  kube-apiserver, kube-controller-manager, kube-scheduler   k8s.io/kubernetes KUBERNETES_VERSION
  etcd                                                      go.etcd.io/etcd/server/v3 ETCD_VERSION
  kwok                                                      sigs.k8s.io/kwok/cmd/kwok KWOK_VERSION
They come from ONE Go module (one `go build`), so the packages they share (client-go, apimachinery,
the apiserver library, etcd's client) compile once: k8s.io/kubernetes is not meant to be required
as a module, so its 33 staging modules are pinned with `replace k8s.io/<m> => k8s.io/<m> v0.<minor>.<patch>`
(their directories are not in the module zip), and the version ldflags are set as Kubernetes'
own build sets them (else /version reports v0.0.0-master). kwok asks for k8s.io/* v0.36 and
compiles against the v0.37 ones this module selects. kwok runs fake nodes: their pods become
Running and Ready without a kubelet or a container runtime (no image is ever pulled).

Cache: ${DATAPIPE_CONTROLPLANE_CACHE:-$HOME/.cache/datapipe-controlplane}/
  kubernetes-<KUBERNETES_VERSION>/{kube-apiserver,kube-controller-manager,kube-scheduler,etcd,kwok}
      with build.log, .build-seconds and .complete (a fingerprint of the pins and this code: a
      change rebuilds it)
  kwok-stages-<KWOK_VERSION>/kwok-stages.yaml   kwok's own stage files (KWOK_STAGES)
  bin/            links to those five
  env.sh          prepends bin/ to PATH; exports DATAPIPE_KWOK_STAGES
A warm run builds nothing and takes well under a second. A cold one (empty Go build and module
caches) took 409 s on an idle 2-core machine, 685 s on a busy one (README, "The `cluster` stack").

Needs (only to build): go >= 1.26 and the Go module proxy. Starting clusters from these binaries:
scripts/clusters.sh.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import engine
from .engine import Build, BuildContext, ProvisionError, Provisioner
from .toolchain import go_mod

# ---- pinned versions (the one place to change them) ----------------------------------------------
KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.7.0"            # what k8s.io/kubernetes v1.37.2 itself requires
KWOK_VERSION = "v0.8.0"
PIN_NAMES = ("KUBERNETES_VERSION", "ETCD_VERSION", "KWOK_VERSION")
# ---------------------------------------------------------------------------------------------------

# k8s.io/kubernetes' staging modules (its go.mod's `replace k8s.io/<m> => ./staging/src/k8s.io/<m>`).
STAGING_MODULES = (
    "api", "apiextensions-apiserver", "apimachinery", "apiserver", "cli-runtime", "client-go",
    "cloud-provider", "cluster-bootstrap", "code-generator", "component-base", "component-helpers",
    "controller-manager", "cri-api", "cri-client", "cri-streaming", "csi-translation-lib",
    "dynamic-resource-allocation", "endpointslice", "externaljwt", "kms", "kube-aggregator",
    "kube-controller-manager", "kube-proxy", "kube-scheduler", "kubectl", "kubelet", "metrics",
    "mount-utils", "pod-security-admission", "sample-apiserver", "sample-cli-plugin",
    "sample-controller", "streaming")
KUBERNETES_PROGRAMS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
PROGRAMS = (*KUBERNETES_PROGRAMS, "etcd", "kwok")
ETCD_MAIN = "go.etcd.io/etcd/server/v3"          # its package main is etcd
KWOK_MAIN = "sigs.k8s.io/kwok/cmd/kwok"


def pins() -> dict[str, str]:
    module = sys.modules[__name__]
    return {name: getattr(module, name) for name in PIN_NAMES}


def default_cache() -> Path:
    return Path(os.environ.get("DATAPIPE_CONTROLPLANE_CACHE") or Path.home() / ".cache" / "datapipe-controlplane")


def staging_version(kubernetes_version: str) -> str:
    """v1.37.2 -> v0.37.2: the staging modules are tagged v0.<minor>.<patch>."""
    major, minor, patch = kubernetes_version.lstrip("v").split(".")
    if major != "1":
        raise ProvisionError(f"KUBERNETES_VERSION {kubernetes_version}: expected v1.<minor>.<patch>")
    return f"v0.{minor}.{patch}"


def version_ldflags(kubernetes_version: str) -> str:
    """What Kubernetes' hack/lib/version.sh sets, for component-base and client-go alike."""
    _, minor, _ = kubernetes_version.lstrip("v").split(".")
    values = {"gitVersion": kubernetes_version, "gitMajor": "1", "gitMinor": minor,
              "gitTreeState": "clean", "gitCommit": "0000000000000000000000000000000000000000",
              "buildDate": "1970-01-01T00:00:00Z"}
    return " ".join(f"-X k8s.io/{package}/version.{key}={value}"
                    for package in ("component-base", "client-go/pkg") for key, value in values.items())


def build_control_plane(ctx: BuildContext) -> None:
    staging = staging_version(KUBERNETES_VERSION)
    ctx.write("go.mod", go_mod(
        "datapipe.local/controlplane",
        {"k8s.io/kubernetes": KUBERNETES_VERSION, "go.etcd.io/etcd/server/v3": ETCD_VERSION,
         "sigs.k8s.io/kwok": KWOK_VERSION},
        {f"k8s.io/{name}": f"k8s.io/{name} {staging}" for name in STAGING_MODULES},
        "k8s.io/kubernetes' staging modules at their tagged versions (its own replaces point into\n"
        "its repository, which the module zip does not hold)."))
    imports = "".join(f'\t_ "k8s.io/kubernetes/cmd/{p}"\n' for p in KUBERNETES_PROGRAMS)
    ctx.write("tools.go", f'//go:build tools\n\npackage tools\n\nimport (\n{imports}\t_ "{ETCD_MAIN}"\n'
                          f'\t_ "{KWOK_MAIN}"\n)\n')
    ctx.run("go", "mod", "tidy")
    ldflags = f"-s -w {version_ldflags(KUBERNETES_VERSION)}"
    # One invocation for all five: the shared packages compile once, both cores stay busy.
    ctx.run("go", "build", "-trimpath", "-ldflags", ldflags, "-o", ctx.out,
            *(f"k8s.io/kubernetes/cmd/{p}" for p in KUBERNETES_PROGRAMS), KWOK_MAIN)
    # etcd's package main has a major-version path (.../server/v3): name its binary explicitly.
    ctx.run("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", ctx.out / "etcd", ETCD_MAIN)
    got = ctx.run(ctx.out / "kube-apiserver", "--version", capture=True, timeout=60).strip()
    ctx.note(f"kube-apiserver --version: {got}")
    if got != f"Kubernetes {KUBERNETES_VERSION}":
        raise ProvisionError(f"kube-apiserver reports {got!r}, expected 'Kubernetes {KUBERNETES_VERSION}'")
    got = ctx.run(ctx.out / "etcd", "--version", capture=True, timeout=60)
    ctx.note(got)
    if f"etcd Version: {ETCD_VERSION.lstrip('v')}" not in got:
        raise ProvisionError(f"etcd --version does not report {ETCD_VERSION}: {got!r}")


# kwok's own stage files, as kwokctl composes them: nodes become Ready and keep a heartbeat, pods
# become Running/Ready (init containers completed), Jobs' pods complete, deletions finish; and its
# volume stages: a PVC of the StorageClass kwok-volume gets a PersistentVolume and is Bound.
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml",
               "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml",
               "volume/fast/pvc-provision.yaml", "volume/fast/pv-bind.yaml",
               "volume/fast/pvc-delete.yaml", "volume/fast/pv-delete.yaml")


def copy_kwok_stages(ctx: BuildContext) -> None:
    info = json.loads(ctx.run("go", "mod", "download", "-json", f"sigs.k8s.io/kwok@{KWOK_VERSION}", capture=True))
    stage_dir = Path(info["Dir"]) / "kustomize" / "stage"
    docs = [(stage_dir / name).read_text().strip() for name in KWOK_STAGES]
    (ctx.out / "kwok-stages.yaml").write_text("\n---\n".join(docs) + "\n")


def kwok_stages_build(cache: Path) -> Build:
    directory = cache / f"kwok-stages-{KWOK_VERSION}"
    return Build("kwok stages", KWOK_VERSION, directory, copy_kwok_stages, tool="go", pins=pins(),
                 outputs=[directory / "kwok-stages.yaml"],
                 workdir="src")


def control_plane_build(cache: Path) -> Build:
    directory = cache / f"kubernetes-{KUBERNETES_VERSION}"
    return Build("kubernetes control plane", KUBERNETES_VERSION, directory, build_control_plane,
                 tool="go", pins=pins(), code=(go_mod, staging_version, version_ldflags),
                 outputs=[directory / p for p in PROGRAMS], workdir="src")


def provision(prov: Provisioner) -> Path:
    env = dict(os.environ)
    engine.add_default_go_to_path(env)
    env["CGO_ENABLED"] = "0"
    prov.env = env
    with prov.lock():
        prov.log(f"cache: {prov.cache}")
        build = control_plane_build(prov.cache)
        prov.ensure(build)
        stages = kwok_stages_build(prov.cache)
        prov.ensure(stages)
        bin_dir = prov.cache / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for program in PROGRAMS:
            engine.symlink(build.directory / program, bin_dir / program)
        env_file = prov.cache / "env.sh"
        engine.write_if_changed(env_file, engine.env_file_text(
            "scripts/controlplane.sh (scripts/provision/controlplane.py)", [bin_dir],
            {"DATAPIPE_KWOK_STAGES": stages.directory / "kwok-stages.yaml"}))
        missing = [p for p in PROGRAMS if not os.access(bin_dir / p, os.X_OK)]
        if missing:
            raise ProvisionError(f"not executable in {bin_dir}: {', '.join(missing)}")
        prov.log(f"checked: {', '.join(PROGRAMS)} in {bin_dir} (Kubernetes {KUBERNETES_VERSION}, "
                 f"etcd {ETCD_VERSION}, kwok {KWOK_VERSION})")
    return env_file


def main(argv: list[str] | None = None) -> int:
    return engine.main(sys.argv[1:] if argv is None else argv, script="controlplane.sh", tag="controlplane",
                       doc=__doc__, run=provision, cache=default_cache())


if __name__ == "__main__":
    sys.exit(main())
