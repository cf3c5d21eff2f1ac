"""scripts/toolchain.sh - the Pulumi CLI (>= v3.274.1), its Python language host and the
kubernetes/random resource plugins, on a machine that may not reach Pulumi's download site.

Usage:
  bash scripts/toolchain.sh                   # ensure all tools, print progress + env file path
  source "$(bash scripts/toolchain.sh --print-env-file)"
                                              # same, but stdout is only the env file path
  bash scripts/toolchain.sh --help

What is used (progress and each build's time on stderr):
  1. The CLI: the first `pulumi` on PATH (outside the cache) whose `pulumi version` is >= v3.274.1,
     as is, with its own language host. Without one, the CLI and a Python language host are built
     from the Go module proxy (see below) and the host is linked next to the CLI, where the engine
     looks for bundled language hosts, with the dynamic-provider plugin pulumi-resource-pulumi-python.
  2. The plugins kubernetes 4.34.2 and random 4.21.4: with an official CLI the ordinary way,
     `pulumi plugin install resource kubernetes 4.34.2`; when that fails (offline) or the CLI was
     built, they are built from the Go module proxy and registered with
     `pulumi plugin install resource NAME VERSION --file BINARY`. Either way they land in the plugin
     directory of the cache's own Pulumi home, <cache>/pulumi-home/plugins/.
  3. <cache>/bin/pulumi, a small wrapper that runs that CLI after linking those plugins into the
     plugin directory of the Pulumi home in use ($PULUMI_HOME, default ~/.pulumi; tests use a
     temporary one), so the engine finds them there instead of on PATH (a plugin found on PATH
     costs a "using pulumi-resource-... from $PATH" warning at every load).

Cache: ${DATAPIPE_TOOLCHAIN_CACHE:-$HOME/.cache/datapipe-toolchain}/
  pulumi-<v>/pulumi (+ pulumi-language-python, pulumi-resource-pulumi-python: links)   the built CLI
  pulumi-language-python-<v>/                            the built host + pulumi-language-python-exec
                                                         + pulumi-resource-pulumi-python
  pulumi-resource-kubernetes-<v>/, pulumi-resource-random-<v>/   the built plugins
  pulumi-home/plugins/                                   the registered plugins
  bin/pulumi                                             the wrapper (bin/ also holds `make test`'s actionlint)
  env.sh                                                 the file to source
Each build directory holds build.log, .build-seconds and, once finished, .complete with a
fingerprint of its pins, its build code and its sources (scripts/toolchain/); a change to any of
them rebuilds it on the next run. A warm run takes well under 2 s and builds nothing; a cold one
about 20 minutes on 2 cores (Go's build cache, ~/.cache/go-build, makes rebuilds much faster).

env.sh prepends <cache>/bin to PATH and exports PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
and PULUMI_SKIP_UPDATE_CHECK=true.

Needs (only to build): go >= 1.26 and the Go module proxy. End-to-end check:
bash scripts/toolchain_smoke.sh. Code: scripts/provision/toolchain.py (builds, decisions) and
scripts/provision/engine.py (cache, fingerprints, lock, timed builds, env file).

What is built (Go sources of the local wrappers: scripts/toolchain/):
- pulumi: github.com/pulumi/pulumi/pkg/v3/cmd/pulumi, CGO_ENABLED=0, version ldflag.
- pulumi-language-python: the upstream host module is untagged and not served by the proxy, so
  scripts/toolchain/pulumi-language-python is a small host built on github.com/pulumi/pulumi/sdk/v3
  (python/toolchain); the upstream pulumi-language-python-exec script from the sdk module is
  installed beside it. It runs programs (Run) and policy packs (RunPlugin). So is the sdk module's
  python/dist/pulumi-resource-pulumi-python, the plugin that runs Python dynamic providers
  (`python -m pulumi.dynamic` in the project's virtualenv; components/tls.py is one): the engine
  takes it, like a language host, from beside the CLI (a "bundled" plugin), never from a plugin
  directory.
- pulumi-resource-kubernetes: github.com/pulumi/pulumi-kubernetes/provider/v4 at the only
  pseudo-version the proxy serves (2026-01-15, the v4.25.0 release by its date and its use in
  crd2pulumi's "update to pulumi-kubernetes v4.25.0"), reporting version 4.34.2 (what
  pulumi-kubernetes==4.34.2 requests): the provider code is v4.25.0's.
- pulumi-resource-random: github.com/pulumi/pulumi-random is not served, so the Terraform random
  provider is bridged with pulumi-terraform-bridge through a local shim module; it reports 4.21.4
  (pulumi-random==4.21.4) and maps the tokens of the pulumi_random SDK.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from . import engine
from .engine import Build, BuildContext, ProvisionError, Provisioner

# ---- pinned versions (the one place to change them) ----------------------------------------------
PULUMI_VERSION = "v3.274.1"               # minimum CLI version; the one built; sdk/v3 of the host
PULUMI_KUBERNETES_VERSION = "4.34.2"      # version the kubernetes plugin reports (== Python SDK)
PULUMI_KUBERNETES_MODULE = "v4.0.0-20260115033456-f47bc2d6f199"   # provider/v4 source (~ v4.25.0)
PULUMI_RANDOM_VERSION = "4.21.4"          # version the random plugin reports (== Python SDK)
TF_PROVIDER_RANDOM_MODULE = "v1.3.2-0.20260824155315-e1092b0cfc07"  # terraform-provider-random (3.9.x)
# terraform-provider-random asks for plugin-framework v1.19.0 / plugin-go v0.31.0, but the
# terraform-plugin-sdk/v2 fork the bridge needs does not compile against plugin-go >= v0.31
# (tfprotov5.ProviderServer gained GenerateResourceConfig), so both are pinned down via replace:
TF_PLUGIN_FRAMEWORK_VERSION = "v1.18.0"
TF_PLUGIN_GO_VERSION = "v0.30.0"
TF_BRIDGE_VERSION = "v3.120.0"            # github.com/pulumi/pulumi-terraform-bridge/v3
TF_PLUGIN_SDK_FORK = "v2.0.0-20250923233607-7f1981c8674a"  # github.com/pulumi/terraform-plugin-sdk/v2
CLIPBOARD_FORK = "v0.0.0-20241001131231-d02d263e614e"      # github.com/tgummerer/clipboard (pkg/v3's)
PIN_NAMES = ("PULUMI_VERSION", "PULUMI_KUBERNETES_VERSION", "PULUMI_KUBERNETES_MODULE",
             "PULUMI_RANDOM_VERSION", "TF_PROVIDER_RANDOM_MODULE", "TF_PLUGIN_FRAMEWORK_VERSION",
             "TF_PLUGIN_GO_VERSION", "TF_BRIDGE_VERSION", "TF_PLUGIN_SDK_FORK", "CLIPBOARD_FORK")
# ---------------------------------------------------------------------------------------------------

HERE = Path(__file__).resolve().parent
GO_SOURCES = HERE.parent / "toolchain"           # scripts/toolchain/: Go sources of the wrappers
SHIM_TEMPLATE = HERE / "templates" / "pulumi.sh"
PKG = "github.com/pulumi/pulumi/pkg/v3"
SDK = "github.com/pulumi/pulumi/sdk/v3"
KUBERNETES_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
# Runs Python dynamic providers; a shell script in the sdk module (python/dist/).
DYNAMIC_PROVIDER_PLUGIN = "pulumi-resource-pulumi-python"
# What the engine only looks for beside the CLI (or on PATH) when the CLI is built here.
BUNDLED_PLUGINS = ("pulumi-language-python", DYNAMIC_PROVIDER_PLUGIN)
PLUGIN_INSTALL_TIMEOUT = 600  # seconds for one `pulumi plugin install` (downloads ~100 MB)


def pins() -> dict[str, str]:
    module = sys.modules[__name__]
    return {name: getattr(module, name) for name in PIN_NAMES}


def default_cache() -> Path:
    return Path(os.environ.get("DATAPIPE_TOOLCHAIN_CACHE") or Path.home() / ".cache" / "datapipe-toolchain")


# ---- versions --------------------------------------------------------------------------------------
def parse_version(text: str) -> tuple[int, int, int, tuple] | None:
    """``v3.274.1`` / ``3.274.1-alpha.1+dirty`` -> (3, 274, 1, ("alpha", 1)); None if no version."""
    match = re.search(r"\bv?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?", text)
    if not match:
        return None
    pre = tuple(int(p) if p.isdigit() else p for p in match.group(4).split(".")) if match.group(4) else ()
    return int(match.group(1)), int(match.group(2)), int(match.group(3)), pre


def _pre_key(pre: tuple) -> tuple:
    # Semantic versioning: a release sorts after its pre-releases; numeric parts before names.
    if not pre:
        return (1,)
    return (0, tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in pre))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as version ``a`` is older than, the same as or newer than ``b`` (semver order)."""
    pa, pb = parse_version(a), parse_version(b)
    if pa is None or pb is None:
        raise ValueError(f"not a version: {a if pa is None else b!r}")
    ka, kb = (pa[:3], _pre_key(pa[3])), (pb[:3], _pre_key(pb[3]))
    return (ka > kb) - (ka < kb)


def version_at_least(version: str, minimum: str) -> bool:
    return parse_version(version) is not None and compare_versions(version, minimum) >= 0


# ---- the CLI -----------------------------------------------------------------------------------------
@dataclass
class Cli:
    path: Path
    version: str
    official: bool          # True: found on PATH and used as is; False: built here

    @property
    def origin(self) -> str:
        return "found on PATH" if self.official else "built from the Go module proxy"


def _within(path: Path, directory: Path) -> bool:
    try:
        path.relative_to(directory)
        return True
    except ValueError:
        return False


def pulumi_candidates(path_env: str, cache: Path) -> list[Path]:
    """Every executable `pulumi` on ``path_env``, in order, except those in the cache (the wrapper
    and builds of a previous run) and duplicates."""
    cache_real = cache.resolve()
    found, seen = [], set()
    for entry in path_env.split(os.pathsep):
        if not entry:
            continue
        exe = Path(entry) / "pulumi"
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            continue
        real = exe.resolve()
        if _within(exe.absolute(), cache) or _within(real, cache_real) or real in seen:
            continue
        seen.add(real)
        found.append(exe)
    return found


def reported_version(exe: Path, env: Mapping[str, str]) -> str | None:
    """The version `exe version` prints (first line), or None if it fails or prints none."""
    try:
        proc = subprocess.run([str(exe), "version"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, env={**env, "PULUMI_SKIP_UPDATE_CHECK": "true"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines or parse_version(lines[0]) is None:
        return None
    return lines[0].split()[0]


def find_official_cli(prov: Provisioner, env: Mapping[str, str], minimum: str = PULUMI_VERSION) -> Cli | None:
    """The first `pulumi` on PATH (outside the cache) that reports a version >= ``minimum``."""
    for exe in pulumi_candidates(env.get("PATH", ""), prov.cache):
        version = reported_version(exe, env)
        if version is None:
            prov.log(f"pulumi: {exe} does not report a version (`pulumi version` failed): not used")
        elif not version_at_least(version, minimum):
            prov.log(f"pulumi: {exe} is {version}, older than the minimum {minimum}: not used")
        else:
            return Cli(exe, version, official=True)
    return None


# ---- Go builds -----------------------------------------------------------------------------------------
def go_mod(module: str, requires: Mapping[str, str], replaces: Mapping[str, str] | None = None,
           comment: str = "") -> str:
    """go.mod text: ``replaces`` maps a module path to "new/path version" (or "./dir")."""
    replaces = replaces or {}
    text = f"module {module}\n\ngo 1.26\n\nrequire (\n"
    text += "".join(f"\t{path} {version}\n" for path, version in requires.items()) + ")\n"
    if comment and replaces:
        text += "\n" + "".join(f"// {line}\n" for line in comment.splitlines())
    text += "".join(f"\nreplace {path} => {target}\n" for path, target in replaces.items())
    return text


def module_dir(ctx: BuildContext, module: str) -> Path:
    """Module cache directory of a module required by the module in the work directory."""
    return Path(ctx.run("go", "list", "-m", "-f", "{{.Dir}}", module, capture=True).strip())


def check_reported_version(ctx: BuildContext, binary: Path, flag: str, want: str) -> None:
    lines = ctx.run(binary, flag, capture=True, timeout=60).strip().splitlines()
    got = lines[-1].strip() if lines else ""
    ctx.note(f"{binary.name} {flag}: {got}")
    if got != want:
        raise ProvisionError(f"{binary} reports version {got!r}, expected {want!r}")


def build_pulumi(ctx: BuildContext) -> None:
    ctx.write("go.mod", go_mod(
        "datapipe.local/toolchain/pulumi", {PKG: PULUMI_VERSION, SDK: PULUMI_VERSION},
        {"github.com/atotto/clipboard": f"github.com/tgummerer/clipboard {CLIPBOARD_FORK}"},
        "Copied from github.com/pulumi/pulumi/pkg/v3's go.mod (replaces of dependencies do not apply)."))
    ctx.write("tools.go", f'//go:build tools\n\npackage tools\n\nimport _ "{PKG}/cmd/pulumi"\n')
    ctx.run("go", "mod", "tidy")
    ctx.run("go", "build", "-trimpath", "-o", ctx.out / "pulumi",
            "-ldflags", f"-s -w -X {SDK}/go/common/version.Version={PULUMI_VERSION}", f"{PKG}/cmd/pulumi")
    check_reported_version(ctx, ctx.out / "pulumi", "version", PULUMI_VERSION)


def build_language_python(ctx: BuildContext) -> None:
    shutil.copy(GO_SOURCES / "pulumi-language-python" / "main.go", ctx.workdir)
    ctx.write("go.mod", go_mod("datapipe.local/toolchain/pulumi-language-python", {SDK: PULUMI_VERSION}))
    ctx.run("go", "mod", "tidy")
    ctx.run("go", "build", "-trimpath", "-o", ctx.out / "pulumi-language-python",
            "-ldflags", f"-s -w -X {SDK}/go/common/version.Version={PULUMI_VERSION}", ".")
    python_dir = module_dir(ctx, SDK) / "python"
    for script in (python_dir / "cmd" / "pulumi-language-python-exec",
                   python_dir / "dist" / DYNAMIC_PROVIDER_PLUGIN):
        shutil.copy(script, ctx.out / script.name)
        (ctx.out / script.name).chmod(0o755)


def build_kubernetes(ctx: BuildContext) -> None:
    for name in ("main.go", "gen.go"):
        shutil.copy(GO_SOURCES / "pulumi-resource-kubernetes" / name, ctx.workdir)
    ctx.write("go.mod", go_mod("datapipe.local/toolchain/pulumi-resource-kubernetes",
                               {KUBERNETES_MODULE: PULUMI_KUBERNETES_MODULE}))
    # The embedded files must exist before `go mod tidy` (it parses go:embed).
    ctx.write("schema-embed.json", "{}")
    ctx.write("terraform-mapping-embed.json", "{}")
    ctx.run("go", "mod", "tidy")
    source = module_dir(ctx, KUBERNETES_MODULE) / "cmd" / "pulumi-resource-kubernetes"
    ctx.run("go", "run", "gen.go", source, PULUMI_KUBERNETES_VERSION)
    binary = ctx.out / "pulumi-resource-kubernetes"
    ctx.run("go", "build", "-trimpath", "-o", binary, "-ldflags",
            f"-s -w -X {KUBERNETES_MODULE}/pkg/version.Version={PULUMI_KUBERNETES_VERSION}", ".")
    check_reported_version(ctx, binary, "-version", PULUMI_KUBERNETES_VERSION)


def build_random(ctx: BuildContext) -> None:
    shutil.copytree(GO_SOURCES / "pulumi-resource-random", ctx.workdir, dirs_exist_ok=True)
    framework = "github.com/hashicorp/terraform-plugin-framework"
    ctx.write("shim/go.mod", go_mod(
        "github.com/terraform-providers/terraform-provider-random/shim",
        {framework: TF_PLUGIN_FRAMEWORK_VERSION,
         "github.com/terraform-providers/terraform-provider-random": TF_PROVIDER_RANDOM_MODULE}))
    ctx.write("go.mod", go_mod(
        "datapipe.local/toolchain/pulumi-resource-random",
        {"github.com/pulumi/pulumi-terraform-bridge/v3": TF_BRIDGE_VERSION,
         "github.com/terraform-providers/terraform-provider-random/shim": "v0.0.0"},
        {"github.com/terraform-providers/terraform-provider-random/shim": "./shim",
         # Copied from pulumi-terraform-bridge's go.mod (replaces of dependencies do not apply).
         "github.com/hashicorp/terraform-plugin-sdk/v2": f"github.com/pulumi/terraform-plugin-sdk/v2 {TF_PLUGIN_SDK_FORK}",
         # Newest versions that still compile with that terraform-plugin-sdk/v2 fork (see the pins).
         "github.com/hashicorp/terraform-plugin-go": f"github.com/hashicorp/terraform-plugin-go {TF_PLUGIN_GO_VERSION}",
         framework: f"{framework} {TF_PLUGIN_FRAMEWORK_VERSION}"},
        "The shim is local; the others: see scripts/provision/toolchain.py (pins)."))
    ctx.write("schema.json", "{}")
    ctx.write("bridge-metadata.json", "{}")
    ctx.run("go", "mod", "tidy")
    ldflags = f"-s -w -X datapipe.local/toolchain/pulumi-resource-random/info.Version={PULUMI_RANDOM_VERSION}"
    ctx.run("go", "build", "-trimpath", "-o", "gen-schema", "-ldflags", ldflags, "./gen")
    ctx.run(ctx.workdir / "gen-schema", ".")
    binary = ctx.out / "pulumi-resource-random"
    ctx.run("go", "build", "-trimpath", "-o", binary, "-ldflags", ldflags, ".")
    check_reported_version(ctx, binary, "-version", PULUMI_RANDOM_VERSION)


GO_HELPERS = (go_mod, module_dir, check_reported_version)


def cli_builds(cache: Path) -> tuple[Build, Build]:
    common = dict(tool="go", pins=pins(), code=GO_HELPERS, workdir="src")
    pulumi_dir = cache / f"pulumi-{PULUMI_VERSION}"
    host_dir = cache / f"pulumi-language-python-{PULUMI_VERSION}"
    return (
        Build("pulumi", PULUMI_VERSION, pulumi_dir, build_pulumi, outputs=[pulumi_dir / "pulumi"], **common),
        Build("pulumi-language-python", PULUMI_VERSION, host_dir, build_language_python,
              sources=[GO_SOURCES / "pulumi-language-python"],
              outputs=[host_dir / "pulumi-language-python", host_dir / "pulumi-language-python-exec",
                       host_dir / DYNAMIC_PROVIDER_PLUGIN], **common),
    )


@dataclass
class Plugin:
    name: str
    version: str
    build: Build            # the Go build, used when the ordinary install is not possible

    @property
    def directory_name(self) -> str:    # how the engine's plugin directory names it
        return f"resource-{self.name}-v{self.version}"

    @property
    def binary_name(self) -> str:
        return f"pulumi-resource-{self.name}"

    @property
    def built_binary(self) -> Path:
        return self.build.directory / self.binary_name


def plugins(cache: Path) -> list[Plugin]:
    common = dict(tool="go", pins=pins(), code=GO_HELPERS, workdir="src")
    result = []
    for name, version, steps in (("kubernetes", PULUMI_KUBERNETES_VERSION, build_kubernetes),
                                 ("random", PULUMI_RANDOM_VERSION, build_random)):
        directory = cache / f"pulumi-resource-{name}-{version}"
        build = Build(f"pulumi-resource-{name}", version, directory, steps,
                      sources=[GO_SOURCES / f"pulumi-resource-{name}"],
                      outputs=[directory / f"pulumi-resource-{name}"], **common)
        result.append(Plugin(name, version, build))
    return result


# ---- plugins in the cache's Pulumi home ----------------------------------------------------------------
def pulumi_home(cache: Path) -> Path:
    return cache / "pulumi-home"


def registered_binary(cache: Path, plugin: Plugin) -> Path:
    return pulumi_home(cache) / "plugins" / plugin.directory_name / plugin.binary_name


def registration_marker(cache: Path, plugin: Plugin) -> Path:
    """Records where the registered plugin came from: "official" or "built <fingerprint>"."""
    return cache / ".registered" / plugin.directory_name


def registration(cache: Path, plugin: Plugin) -> str | None:
    if not os.access(registered_binary(cache, plugin), os.X_OK):
        return None
    try:
        return registration_marker(cache, plugin).read_text().strip() or None
    except OSError:
        return None


def plugin_install(prov: Provisioner, cli: Cli, plugin: Plugin, env: Mapping[str, str],
                   *extra: str) -> tuple[bool, float, Path, str]:
    """`pulumi plugin install resource NAME VERSION [extra]` into the cache's Pulumi home.

    Returns (succeeded, seconds, log path, the last line it printed)."""
    log = prov.cache / f"plugin-install-{plugin.name}.log"
    args = [str(cli.path), "plugin", "install", "resource", plugin.name, plugin.version, *extra]
    start = time.monotonic()
    with open(log, "w") as handle:
        handle.write(f"$ {' '.join(args)}\n")
        handle.flush()
        try:
            proc = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
                                  timeout=PLUGIN_INSTALL_TIMEOUT,
                                  env={**env, "PULUMI_HOME": str(pulumi_home(prov.cache)),
                                       "PULUMI_SKIP_UPDATE_CHECK": "true"})
            status = f"exit status {proc.returncode}"
            ok = proc.returncode == 0
        except subprocess.TimeoutExpired:
            status, ok = f"timed out after {PLUGIN_INSTALL_TIMEOUT}s", False
        handle.flush()
        printed = [line for line in log.read_text(errors="replace").splitlines()[1:] if line.strip()]
        handle.write(f"({status})\n")
    last = printed[-1].strip() if printed else status
    ok = ok and os.access(registered_binary(prov.cache, plugin), os.X_OK)
    return ok, time.monotonic() - start, log, last


def ensure_plugin(prov: Provisioner, cli: Cli, plugin: Plugin, env: Mapping[str, str]) -> bool:
    """Make the plugin registered in the cache's Pulumi home. True if anything changed.

    Kept as is: an official registration, or a built one whose build is current. Otherwise, with an
    official CLI, the ordinary `pulumi plugin install` first; the Go build (and its registration
    with --file) when that fails or the CLI was built here."""
    label = f"plugin {plugin.name} {plugin.version}"
    current = registration(prov.cache, plugin)
    if current == "official":
        prov.log(f"{label}: installed in {pulumi_home(prov.cache)} (pulumi plugin install)")
        return False
    if current is not None and current == f"built {engine.fingerprint(plugin.build)}" \
            and prov.is_current(plugin.build):
        prov.log(f"{label}: registered in {pulumi_home(prov.cache)} "
                 f"(built in {prov.build_seconds(plugin.build)}s)")
        return False
    marker = registration_marker(prov.cache, plugin)
    marker.parent.mkdir(parents=True, exist_ok=True)
    if cli.official and current is None:
        prov.log(f"{label}: pulumi plugin install resource {plugin.name} {plugin.version}")
        ok, seconds, log, last = plugin_install(prov, cli, plugin, env)
        if ok:
            marker.write_text("official\n")
            prov.log(f"{label}: installed in {seconds:.0f}s")
            return True
        prov.log(f"{label}: pulumi plugin install failed ({last[:200]}; log: {log}): "
                 "building it from the Go module proxy instead")
    prov.ensure(plugin.build)
    ok, seconds, log, _ = plugin_install(prov, cli, plugin, env, "--file", str(plugin.built_binary), "--reinstall")
    if not ok:
        raise ProvisionError(f"registering {plugin.build.label} (pulumi plugin install --file) failed. "
                             f"Last lines of {log}:\n{engine.log_tail(log)}")
    marker.write_text(f"built {engine.fingerprint(plugin.build)}\n")
    prov.log(f"{label}: registered the build in {pulumi_home(prov.cache)} ({seconds:.1f}s)")
    return True


def shim_text(cli: Cli, cache: Path, registered: list[Plugin]) -> str:
    lines = [f"register {p.directory_name} {p.binary_name} {shlex.quote(str(registered_binary(cache, p)))}"
             for p in registered]
    return string.Template(SHIM_TEMPLATE.read_text()).substitute(
        cli=shlex.quote(str(cli.path)), description=f"pulumi {cli.version}, {cli.origin}",
        home=str(pulumi_home(cache)), registrations="\n".join(lines))


def link_language_host(pulumi_dir: Path, host_dir: Path) -> bool:
    """The engine takes a language host and the Python dynamic-provider plugin from beside the
    running CLI (bundled plugins) before any other place: link the built ones there. True if a
    link changed."""
    changed = False
    for name in BUNDLED_PLUGINS:
        changed |= engine.symlink(host_dir / name, pulumi_dir / name)
    return changed


# ---- checks through the env file -----------------------------------------------------------------------
def verify(prov: Provisioner, env_file: Path, cli: Cli, plugin_list: list[Plugin], deep: bool) -> None:
    """After a change: `pulumi version` through the env file, as callers use it, and `pulumi plugin ls`
    in an empty Pulumi home, which the wrapper must fill with links to the plugins. A warm run (no
    change) only checks that the files are there: it starts no Go binary."""
    wrapper = prov.cache / "bin" / "pulumi"
    # A built CLI's bundled plugins are links beside it: a dangling one would fail only in `pulumi up`.
    bundled = [] if cli.official else [cli.path.parent / name for name in BUNDLED_PLUGINS]
    missing = [str(p) for p in (cli.path, wrapper, *bundled, *(registered_binary(prov.cache, p) for p in plugin_list))
               if not os.access(p, os.X_OK)]
    if missing:
        raise ProvisionError(f"not executable: {', '.join(missing)}")
    if not deep:
        prov.log(f"checked: pulumi {cli.version} ({cli.path}), plugins "
                 + ", ".join(f"{p.name} {p.version}" for p in plugin_list))
        return
    # `pulumi version` in the cache's own Pulumi home, so that the check links nothing into yours.
    script = ('source "$1" && command -v pulumi && PULUMI_HOME="$2" pulumi version'
              ' && PULUMI_HOME="$3" pulumi plugin ls --json')
    with tempfile.TemporaryDirectory(prefix="datapipe-toolchain-check.") as empty_home:
        proc = subprocess.run(["bash", "-c", script, "verify", str(env_file), str(pulumi_home(prov.cache)),
                               empty_home], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
    out = proc.stdout.splitlines()
    if proc.returncode != 0 or len(out) < 2:
        raise ProvisionError(f"checking {env_file} failed (exit {proc.returncode}): {proc.stdout}{proc.stderr}")
    if out[0] != str(wrapper):
        raise ProvisionError(f"after sourcing {env_file}, `pulumi` is {out[0]}, not {wrapper}")
    if out[1].strip() != cli.version:
        raise ProvisionError(f"pulumi version printed {out[1]!r}, expected {cli.version}")
    found = {(p["name"], p["version"]) for p in json.loads("\n".join(out[2:]))}
    missing = [f"{p.name} {p.version}" for p in plugin_list if (p.name, p.version) not in found]
    if missing:
        raise ProvisionError(f"the pulumi wrapper {wrapper} did not make {', '.join(missing)} visible "
                             f"in an empty Pulumi home (pulumi plugin ls: {sorted(found)})")
    prov.log(f"verified: pulumi {cli.version} ({cli.path}), plugins "
             + ", ".join(f"{p.name} {p.version}" for p in plugin_list)
             + " (seen by the engine from an empty Pulumi home)")


# ---- main ----------------------------------------------------------------------------------------------
def provision(prov: Provisioner) -> Path:
    cache = prov.cache
    env = dict(os.environ)
    engine.add_default_go_to_path(env)
    env["CGO_ENABLED"] = "0"
    prov.env = env
    changed = False
    with prov.lock():
        prov.log(f"cache: {cache}")
        cli = find_official_cli(prov, env)
        if cli is not None:
            prov.log(f"pulumi {cli.version}: using {cli.path} (on PATH, >= {PULUMI_VERSION}) "
                     "with its own language host")
        else:
            prov.log(f"pulumi: no pulumi >= {PULUMI_VERSION} on PATH: using the build from the Go module proxy")
            pulumi_build, host_build = cli_builds(cache)
            changed |= prov.ensure(pulumi_build)
            changed |= prov.ensure(host_build)
            changed |= link_language_host(pulumi_build.directory, host_build.directory)
            cli = Cli(pulumi_build.directory / "pulumi", PULUMI_VERSION, official=False)
        plugin_list = plugins(cache)
        for plugin in plugin_list:
            changed |= ensure_plugin(prov, cli, plugin, env)
        changed |= engine.write_if_changed(cache / "bin" / "pulumi", shim_text(cli, cache, plugin_list), 0o755)
        env_file = cache / "env.sh"
        changed |= engine.write_if_changed(env_file, engine.env_file_text(
            "scripts/toolchain.sh (scripts/provision/toolchain.py)", [cache / "bin"],
            {"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true", "PULUMI_SKIP_UPDATE_CHECK": "true"}))
        verify(prov, env_file, cli, plugin_list, deep=changed)
    return env_file


def main(argv: list[str] | None = None) -> int:
    return engine.main(sys.argv[1:] if argv is None else argv, script="toolchain.sh", tag="toolchain",
                       doc=__doc__, run=provision, cache=default_cache())


if __name__ == "__main__":
    sys.exit(main())
