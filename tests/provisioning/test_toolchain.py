"""scripts/toolchain.sh's decisions: which `pulumi` is used, how plugins are installed or built and
registered, the `pulumi` wrapper and the env file. Fake `pulumi` scripts on PATH stand in for the
CLI; nothing is downloaded or compiled."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from provision import engine, toolchain
from provision.engine import Build, Provisioner
from provision.toolchain import Cli, Plugin

# A stand-in for the Pulumi CLI: logs its arguments, answers `version`, `plugin install` (ordinary:
# succeeds unless INSTALL is "fail"; with --file: copies the file) and `plugin ls --json` the way the
# real CLI lays out $PULUMI_HOME/plugins/<kind>-<name>-v<version>/pulumi-<kind>-<name>.
FAKE_PULUMI = '''#!{python}
import json, os, shutil, sys
VERSION, INSTALL, CALLS = {version!r}, {install!r}, {calls!r}
args = sys.argv[1:]
with open(CALLS, "a") as log:
    log.write(" ".join(args) + "\\n")
home = os.environ.get("PULUMI_HOME") or os.path.expanduser("~/.pulumi")
if args == ["version"]:
    if VERSION is None:
        sys.exit("error: broken")
    print(VERSION)
elif args[:2] == ["plugin", "install"]:
    kind, name, version = args[2:5]
    source = args[args.index("--file") + 1] if "--file" in args else None
    if source is None and INSTALL == "fail":
        sys.exit("error: could not download plugin: no such host")
    directory = os.path.join(home, "plugins", f"{{kind}}-{{name}}-v{{version}}")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, f"pulumi-{{kind}}-{{name}}")
    if source:
        shutil.copy(source, target)
    else:
        with open(target, "w") as f:
            f.write("#!/bin/sh\\necho official\\n")
    os.chmod(target, 0o755)
elif args == ["plugin", "ls", "--json"]:
    found = []
    plugins = os.path.join(home, "plugins")
    for entry in sorted(os.listdir(plugins)) if os.path.isdir(plugins) else []:
        path = os.path.join(plugins, entry)
        if os.path.isdir(path) and not os.path.islink(path) and ".tmp" not in entry:
            kind, rest = entry.split("-", 1)
            name, version = rest.rsplit("-v", 1)
            if os.access(os.path.join(path, f"pulumi-{{kind}}-{{name}}"), os.X_OK):
                found.append({{"name": name, "kind": kind, "version": version}})
    print(json.dumps(found))
else:
    sys.exit(f"unexpected arguments: {{args}}")
'''


def fake_pulumi(directory: Path, version: str | None = "v3.280.0", install: str = "ok",
                calls: Path | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    exe = directory / "pulumi"
    calls = calls or directory / "calls.log"
    exe.write_text(FAKE_PULUMI.format(python=sys.executable, version=version, install=install, calls=str(calls)))
    exe.chmod(0o755)
    return exe


def calls_of(exe: Path) -> list[str]:
    log = exe.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def make_provisioner(tmp_path: Path) -> tuple[Provisioner, io.StringIO]:
    stream = io.StringIO()
    return Provisioner("toolchain", tmp_path / "cache", stream=stream), stream


# ---- version comparison --------------------------------------------------------------------------
@pytest.mark.parametrize("version, minimum, ok", [
    ("v3.274.1", "v3.274.1", True),
    ("3.274.1", "v3.274.1", True),
    ("v3.274.2", "v3.274.1", True),
    ("v3.275.0", "v3.274.1", True),
    ("v3.1000.0", "v3.274.1", True),      # numeric, not lexicographic
    ("v4.0.0", "v3.274.1", True),
    ("v3.274.0", "v3.274.1", False),
    ("v3.99.9", "v3.274.1", False),
    ("v2.999.999", "v3.274.1", False),
    ("v3.274.1-alpha.1", "v3.274.1", False),  # a pre-release comes before its release
    ("v3.274.2-dev.0", "v3.274.1", True),
    ("v3.274.1+dirty", "v3.274.1", True),     # build metadata does not count
    ("not a version", "v3.274.1", False),
    ("", "v3.274.1", False),
])
def test_version_at_least(version, minimum, ok):
    assert toolchain.version_at_least(version, minimum) is ok


def test_prerelease_order_follows_semver():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
    for older, newer in zip(ordered, ordered[1:]):
        assert toolchain.compare_versions(older, newer) == -1, (older, newer)
        assert toolchain.compare_versions(newer, older) == 1
    assert toolchain.compare_versions("v1.0.0", "1.0.0") == 0


def test_parse_version_takes_the_version_out_of_a_line():
    assert toolchain.parse_version("v3.274.1") == (3, 274, 1, ())
    assert toolchain.parse_version("pulumi v3.274.1-alpha.2") == (3, 274, 1, ("alpha", 2))
    assert toolchain.parse_version("warning: something") is None


# ---- which CLI -----------------------------------------------------------------------------------------
def test_a_new_enough_pulumi_on_path_is_used(tmp_path):
    prov, _ = make_provisioner(tmp_path)
    exe = fake_pulumi(tmp_path / "official", "v3.280.0")
    cli = toolchain.find_official_cli(prov, {"PATH": f"{exe.parent}:/usr/bin:/bin"})
    assert cli == Cli(exe, "v3.280.0", official=True)


def test_exactly_the_minimum_is_new_enough(tmp_path):
    prov, _ = make_provisioner(tmp_path)
    exe = fake_pulumi(tmp_path / "official", toolchain.PULUMI_VERSION)
    assert toolchain.find_official_cli(prov, {"PATH": str(exe.parent)}).path == exe


def test_an_older_pulumi_is_skipped_for_a_newer_one_later_on_path(tmp_path):
    prov, stream = make_provisioner(tmp_path)
    old = fake_pulumi(tmp_path / "old", "v3.200.0")
    new = fake_pulumi(tmp_path / "new", "v3.300.0")
    cli = toolchain.find_official_cli(prov, {"PATH": f"{old.parent}:{new.parent}"})
    assert cli.path == new
    assert f"{old} is v3.200.0, older than the minimum v3.274.1: not used" in stream.getvalue()


@pytest.mark.parametrize("version", ["v3.274.0", "v3.274.1-rc.1", None])
def test_no_suitable_pulumi_means_building_it(tmp_path, version):
    prov, stream = make_provisioner(tmp_path)
    exe = fake_pulumi(tmp_path / "official", version)
    assert toolchain.find_official_cli(prov, {"PATH": str(exe.parent)}) is None
    assert "not used" in stream.getvalue()


def test_pulumi_in_the_cache_is_not_taken_for_an_official_one(tmp_path):
    # The wrapper <cache>/bin/pulumi (on PATH once env.sh is sourced) and earlier builds.
    prov, _ = make_provisioner(tmp_path)
    wrapper = fake_pulumi(tmp_path / "cache" / "bin", "v9.0.0")
    built = fake_pulumi(tmp_path / "cache" / "pulumi-v3.274.1", "v3.274.1")
    link_dir = tmp_path / "elsewhere"
    link_dir.mkdir()
    (link_dir / "pulumi").symlink_to(built)
    path = f"{wrapper.parent}:{built.parent}:{link_dir}"
    assert toolchain.pulumi_candidates(path, prov.cache) == []
    assert toolchain.find_official_cli(prov, {"PATH": path}) is None


def test_no_pulumi_on_path_at_all(tmp_path):
    prov, _ = make_provisioner(tmp_path)
    assert toolchain.find_official_cli(prov, {"PATH": str(tmp_path)}) is None


# ---- plugins -------------------------------------------------------------------------------------------
def fake_plugin_build(tmp_path: Path, counter: list, version: str = "1.2.3") -> Plugin:
    directory = tmp_path / "cache" / f"pulumi-resource-demo-{version}"

    def steps(ctx):
        counter.append(1)
        binary = ctx.out / "pulumi-resource-demo"
        binary.write_text("#!/bin/sh\necho built\n")
        binary.chmod(0o755)

    build = Build("pulumi-resource-demo", version, directory, steps, pins={"DEMO": version},
                  extra={"version": version}, outputs=[directory / "pulumi-resource-demo"])
    return Plugin("demo", "1.2.3", build)


def registered(prov: Provisioner, plugin: Plugin) -> Path:
    return toolchain.registered_binary(prov.cache, plugin)


def test_official_cli_installs_plugins_the_ordinary_way(tmp_path):
    prov, stream = make_provisioner(tmp_path)
    exe = fake_pulumi(tmp_path / "official")
    builds = []
    plugin = fake_plugin_build(tmp_path, builds)
    cli = Cli(exe, "v3.280.0", official=True)
    assert toolchain.ensure_plugin(prov, cli, plugin, dict(os.environ)) is True
    assert calls_of(exe) == ["plugin install resource demo 1.2.3"]
    assert builds == []
    assert subprocess.run([registered(prov, plugin)], capture_output=True, text=True).stdout == "official\n"
    assert toolchain.registration(prov.cache, plugin) == "official"

    # Warm: nothing is run at all.
    assert toolchain.ensure_plugin(prov, cli, plugin, dict(os.environ)) is False
    assert calls_of(exe) == ["plugin install resource demo 1.2.3"]
    assert "plugin demo 1.2.3: installed in" in stream.getvalue()


def test_official_cli_offline_falls_back_to_the_build(tmp_path):
    prov, stream = make_provisioner(tmp_path)
    exe = fake_pulumi(tmp_path / "official", install="fail")
    builds = []
    plugin = fake_plugin_build(tmp_path, builds)
    cli = Cli(exe, "v3.280.0", official=True)
    assert toolchain.ensure_plugin(prov, cli, plugin, dict(os.environ)) is True
    assert builds == [1]
    assert calls_of(exe) == [
        "plugin install resource demo 1.2.3",
        f"plugin install resource demo 1.2.3 --file {plugin.built_binary} --reinstall"]
    assert "could not download plugin" in stream.getvalue()
    assert "building it from the Go module proxy instead" in stream.getvalue()
    assert subprocess.run([registered(prov, plugin)], capture_output=True, text=True).stdout == "built\n"

    # Warm: the registered build is kept; no second download attempt, no build.
    assert toolchain.ensure_plugin(prov, cli, plugin, dict(os.environ)) is False
    assert len(calls_of(exe)) == 2 and builds == [1]


def test_built_cli_builds_and_registers_plugins_without_trying_a_download(tmp_path):
    prov, _ = make_provisioner(tmp_path)
    exe = fake_pulumi(tmp_path / "cache" / "pulumi-v3.274.1", "v3.274.1")
    builds = []
    plugin = fake_plugin_build(tmp_path, builds)
    cli = Cli(exe, "v3.274.1", official=False)
    assert toolchain.ensure_plugin(prov, cli, plugin, dict(os.environ)) is True
    assert calls_of(exe) == [f"plugin install resource demo 1.2.3 --file {plugin.built_binary} --reinstall"]
    assert toolchain.registration(prov.cache, plugin) == f"built {engine.fingerprint(plugin.build)}"

    # A changed build input rebuilds and registers again.
    changed = fake_plugin_build(tmp_path, builds, version="1.2.3")
    changed.build.extra = {"version": "other"}
    assert toolchain.ensure_plugin(prov, cli, changed, dict(os.environ)) is True
    assert builds == [1, 1] and len(calls_of(exe)) == 2


def test_a_failed_registration_names_the_plugin(tmp_path):
    prov, _ = make_provisioner(tmp_path)
    broken = tmp_path / "broken" / "pulumi"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'error: plugin cache is read-only' >&2\nexit 1\n")
    broken.chmod(0o755)
    plugin = fake_plugin_build(tmp_path, [])
    with pytest.raises(engine.ProvisionError, match=r"(?s)registering pulumi-resource-demo 1.2.3 .*read-only"):
        toolchain.ensure_plugin(prov, Cli(broken, "v3.274.1", official=False), plugin, dict(os.environ))


# ---- the pulumi wrapper ------------------------------------------------------------------------------------
def test_wrapper_links_the_plugins_into_the_pulumi_home_in_use_and_runs_the_cli(tmp_path):
    prov, _ = make_provisioner(tmp_path)
    exe = fake_pulumi(tmp_path / "official")
    plugin = fake_plugin_build(tmp_path, [])
    toolchain.ensure_plugin(prov, Cli(exe, "v3.280.0", official=True), plugin, dict(os.environ))
    wrapper = tmp_path / "cache" / "bin" / "pulumi"
    engine.write_if_changed(wrapper, toolchain.shim_text(Cli(exe, "v3.280.0", True), prov.cache, [plugin]), 0o755)
    assert subprocess.run(["sh", "-n", str(wrapper)]).returncode == 0

    home = tmp_path / "some home"
    env = {**os.environ, "PULUMI_HOME": str(home)}
    for _ in range(2):  # idempotent
        out = subprocess.run([str(wrapper), "plugin", "ls", "--json"], env=env, capture_output=True, text=True,
                             check=True).stdout
        assert json.loads(out) == [{"name": "demo", "kind": "resource", "version": "1.2.3"}]
    link = home / "plugins" / "resource-demo-v1.2.3" / "pulumi-resource-demo"
    assert link.is_symlink() and os.readlink(link) == str(registered(prov, plugin))
    assert sorted(p.name for p in (home / "plugins").iterdir()) == ["resource-demo-v1.2.3"]

    # A stale link (the cache moved or was rebuilt) is pointed at the registered plugin again.
    link.unlink()
    link.symlink_to(tmp_path / "gone")
    subprocess.run([str(wrapper), "version"], env=env, check=True, capture_output=True)
    assert os.readlink(link) == str(registered(prov, plugin))

    # Without PULUMI_HOME the default home is ~/.pulumi.
    fake_home = tmp_path / "user"
    subprocess.run([str(wrapper), "version"], env={**env, "HOME": str(fake_home), "PULUMI_HOME": ""},
                   check=True, capture_output=True)
    assert (fake_home / ".pulumi" / "plugins" / "resource-demo-v1.2.3" / "pulumi-resource-demo").exists()


def test_built_language_host_is_linked_beside_the_cli(tmp_path):
    pulumi_dir, host_dir = tmp_path / "pulumi-v3.274.1", tmp_path / "pulumi-language-python-v3.274.1"
    pulumi_dir.mkdir()
    host_dir.mkdir()
    assert toolchain.link_language_host(pulumi_dir, host_dir) is True
    assert toolchain.link_language_host(pulumi_dir, host_dir) is False
    # The engine looks beside the CLI for the language host and for the plugin that runs Python
    # dynamic providers (components/tls.py).
    for name in ("pulumi-language-python", "pulumi-resource-pulumi-python"):
        assert os.readlink(pulumi_dir / name) == str(host_dir / name)


# ---- the whole run, with fakes -------------------------------------------------------------------------
def demo_plugins(cache: Path) -> list[Plugin]:
    return [fake_plugin_build(cache.parent, [])]


def write_built_cli(ctx):
    fake_pulumi(ctx.out, toolchain.PULUMI_VERSION, calls=ctx.out.parent / "built-calls.log")


def write_built_host(ctx):
    for name in ("pulumi-language-python", "pulumi-language-python-exec", "pulumi-resource-pulumi-python"):
        (ctx.out / name).write_text("#!/bin/sh\n")
        (ctx.out / name).chmod(0o755)


def fake_cli_builds(cache: Path) -> tuple[Build, Build]:
    pulumi_dir, host_dir = cache / "pulumi-v3.274.1", cache / "pulumi-language-python-v3.274.1"
    return (Build("pulumi", "v3.274.1", pulumi_dir, write_built_cli, outputs=[pulumi_dir / "pulumi"]),
            Build("pulumi-language-python", "v3.274.1", host_dir, write_built_host,
                  outputs=[host_dir / "pulumi-language-python", host_dir / "pulumi-resource-pulumi-python"]))


def run_provision(tmp_path, monkeypatch, path: str) -> tuple[Path, str]:
    monkeypatch.setenv("PATH", path)
    monkeypatch.setattr(toolchain, "plugins", demo_plugins)
    monkeypatch.setattr(toolchain, "cli_builds", fake_cli_builds)
    prov, stream = make_provisioner(tmp_path)
    return toolchain.provision(prov), stream.getvalue()


def sourced(env_file: Path, command: str) -> str:
    return subprocess.run(["bash", "-c", f'source "$1" && {command}', "x", str(env_file)], capture_output=True,
                          text=True, check=True, env={**os.environ, "PATH": "/usr/bin:/bin"}).stdout


def test_provision_with_an_official_cli(tmp_path, monkeypatch):
    exe = fake_pulumi(tmp_path / "official")
    env_file, log = run_provision(tmp_path, monkeypatch, f"{exe.parent}:/usr/bin:/bin")
    cache = tmp_path / "cache"
    assert env_file == cache / "env.sh"
    assert env_file.read_text() == textwrap.dedent(f"""\
        # Generated by scripts/toolchain.sh (scripts/provision/toolchain.py) - source this file; do not edit.
        for _datapipe_dir in \\
          {cache / 'bin'} \\
          ; do
          _datapipe_path=":$PATH:"
          while case "$_datapipe_path" in *":$_datapipe_dir:"*) true ;; *) false ;; esac; do
            _datapipe_path="${{_datapipe_path%%":$_datapipe_dir:"*}}:${{_datapipe_path#*":$_datapipe_dir:"}}"
          done
          _datapipe_path="${{_datapipe_path#:}}"
          _datapipe_path="${{_datapipe_path%:}}"
          PATH="$_datapipe_dir${{_datapipe_path:+:$_datapipe_path}}"
        done
        unset _datapipe_dir _datapipe_path
        export PATH
        export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
        export PULUMI_SKIP_UPDATE_CHECK=true
        """)
    assert f"pulumi v3.280.0: using {exe} (on PATH, >= v3.274.1) with its own language host" in log
    assert "verified: pulumi v3.280.0" in log and "seen by the engine from an empty Pulumi home" in log
    assert not (cache / "pulumi-v3.274.1").exists()   # nothing built
    assert sourced(env_file, "command -v pulumi").strip() == str(cache / "bin" / "pulumi")
    assert "plugin install resource demo 1.2.3" in calls_of(exe)

    # Warm: no install, no plugin listing; only the `pulumi version` that chooses the CLI.
    before = len(calls_of(exe))
    _, log = run_provision(tmp_path, monkeypatch, f"{exe.parent}:{cache / 'bin'}:/usr/bin:/bin")
    assert calls_of(exe)[before:] == ["version"]
    assert "plugin demo 1.2.3: installed in" in log
    assert f"checked: pulumi v3.280.0 ({exe}), plugins demo 1.2.3" in log


def test_provision_without_a_suitable_cli_uses_the_build(tmp_path, monkeypatch):
    old = fake_pulumi(tmp_path / "old", "v3.100.0")
    env_file, log = run_provision(tmp_path, monkeypatch, f"{old.parent}:/usr/bin:/bin")
    cache = tmp_path / "cache"
    built = cache / "pulumi-v3.274.1" / "pulumi"
    assert "no pulumi >= v3.274.1 on PATH: using the build from the Go module proxy" in log
    assert f"exec {built} " in (cache / "bin" / "pulumi").read_text()
    for name in ("pulumi-language-python", "pulumi-resource-pulumi-python"):
        assert os.readlink(built.parent / name) == str(cache / "pulumi-language-python-v3.274.1" / name)
    calls = (cache / "built-calls.log").read_text().splitlines()
    assert any(c.startswith("plugin install resource demo 1.2.3 --file ") for c in calls)
    assert not any(c == "plugin install resource demo 1.2.3" for c in calls)
    assert sourced(env_file, "pulumi version").strip() == "v3.274.1"
    assert calls_of(old) == ["version"]


def test_a_lost_dynamic_provider_plugin_rebuilds_the_host_it_comes_with(tmp_path, monkeypatch):
    """Without pulumi-resource-pulumi-python beside the CLI, `pulumi up` of a program with a dynamic
    resource (components/tls.py) fails: "no resource plugin 'pulumi-resource-pulumi-python' found"."""
    path = f"{fake_pulumi(tmp_path / 'old', 'v3.100.0').parent}:/usr/bin:/bin"
    run_provision(tmp_path, monkeypatch, path)
    cache = tmp_path / "cache"
    (cache / "pulumi-language-python-v3.274.1" / "pulumi-resource-pulumi-python").unlink()
    _, log = run_provision(tmp_path, monkeypatch, path)
    assert "built pulumi-language-python v3.274.1" in log
    assert os.access(cache / "pulumi-v3.274.1" / "pulumi-resource-pulumi-python", os.X_OK)
