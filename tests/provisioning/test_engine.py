"""The shared engine: fingerprints, warm-cache skips, failures, env files, the command line."""

from __future__ import annotations

import fcntl
import io
import os
import subprocess
from pathlib import Path

import pytest

from provision import engine
from provision.engine import Build, BuildFailed, ProvisionError, Provisioner

PINS = {"TOOL_VERSION": "1.0.0", "OTHER_VERSION": "9.9.9"}


def write_tool(ctx):
    (ctx.out / "tool").write_text(f"tool {PINS['TOOL_VERSION']}\n")


def write_other(ctx):
    (ctx.out / "tool").write_text("other\n")


def make_build(tmp_path: Path, steps=write_tool, pins=None, sources=(), **kwargs) -> Build:
    directory = tmp_path / "cache" / "tool-1.0.0"
    return Build("tool", "1.0.0", directory, steps, pins=PINS if pins is None else pins,
                 sources=list(sources), outputs=[directory / "tool"], **kwargs)


def provisioner(tmp_path: Path) -> tuple[Provisioner, io.StringIO]:
    stream = io.StringIO()
    return Provisioner("test", tmp_path / "cache", stream=stream), stream


# ---- fingerprints ------------------------------------------------------------------------------
def test_fingerprint_is_stable(tmp_path):
    assert engine.fingerprint(make_build(tmp_path)) == engine.fingerprint(make_build(tmp_path))


def test_fingerprint_changes_with_a_pin_the_build_names(tmp_path):
    before = engine.fingerprint(make_build(tmp_path))
    after = engine.fingerprint(make_build(tmp_path, pins={**PINS, "TOOL_VERSION": "1.0.1"}))
    assert before != after


def test_fingerprint_ignores_a_pin_the_build_does_not_name(tmp_path):
    build = make_build(tmp_path)
    assert engine.pins_used(build) == {"TOOL_VERSION": "1.0.0"}
    before = engine.fingerprint(build)
    assert engine.fingerprint(make_build(tmp_path, pins={**PINS, "OTHER_VERSION": "0.0.1"})) == before


def test_fingerprint_counts_pins_named_by_helper_code(tmp_path):
    def helper():
        return PINS["OTHER_VERSION"]
    build = make_build(tmp_path, code=[helper])
    assert set(engine.pins_used(build)) == {"TOOL_VERSION", "OTHER_VERSION"}


def test_fingerprint_changes_with_a_source_file(tmp_path):
    sources = tmp_path / "src"
    (sources / "sub").mkdir(parents=True)
    (sources / "main.go").write_text("package main\n")
    (sources / "sub" / "x.go").write_text("package sub\n")
    build = make_build(tmp_path, sources=[sources])
    before = engine.fingerprint(build)
    (sources / "sub" / "x.go").write_text("package sub // changed\n")
    changed = engine.fingerprint(build)
    (sources / "sub" / "x.go").write_text("package sub\n")
    (sources / "sub" / "y.go").write_text("package sub\n")
    added = engine.fingerprint(build)
    assert len({before, changed, added}) == 3


def test_fingerprint_ignores_bytecode_caches(tmp_path):
    sources = tmp_path / "src"
    sources.mkdir()
    (sources / "a.txt").write_text("a")
    build = make_build(tmp_path, sources=[sources])
    before = engine.fingerprint(build)
    (sources / "__pycache__").mkdir()
    (sources / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert engine.fingerprint(build) == before


def test_fingerprint_changes_with_the_build_code_and_extra_inputs(tmp_path):
    base = engine.fingerprint(make_build(tmp_path))
    assert engine.fingerprint(make_build(tmp_path, steps=write_other)) != base
    assert engine.fingerprint(make_build(tmp_path, extra={"m2": "/elsewhere"})) != base


def test_missing_source_is_an_error(tmp_path):
    with pytest.raises(ProvisionError, match="missing"):
        engine.fingerprint(make_build(tmp_path, sources=[tmp_path / "nope"]))


# ---- ensure: build once, then skip ---------------------------------------------------------------
def test_builds_once_then_skips_a_warm_cache(tmp_path):
    calls = []

    def steps(ctx):
        calls.append(ctx.workdir)
        ctx.run("sh", "-c", "echo compiling; echo built > \"$0\"", ctx.out / "tool")

    prov, stream = provisioner(tmp_path)
    build = make_build(tmp_path, steps=steps)
    assert prov.ensure(build) is True
    assert (build.directory / "tool").read_text() == "built\n"
    assert "compiling" in build.log_path.read_text()
    assert (build.directory / ".build-seconds").read_text().strip().isdigit()
    assert "built tool 1.0.0 in" in stream.getvalue()

    assert prov.ensure(make_build(tmp_path, steps=steps)) is False
    assert len(calls) == 1
    assert "tool 1.0.0: cached in" in stream.getvalue()


def test_rebuilds_when_the_fingerprint_or_an_output_changes(tmp_path):
    prov, _ = provisioner(tmp_path)
    build = make_build(tmp_path)
    assert prov.ensure(build)
    assert not prov.ensure(build)
    assert prov.ensure(make_build(tmp_path, pins={**PINS, "TOOL_VERSION": "2.0.0"}))
    (build.directory / "tool").unlink()
    assert prov.ensure(make_build(tmp_path, pins={**PINS, "TOOL_VERSION": "2.0.0"}))


def test_a_build_starts_from_an_empty_directory(tmp_path):
    prov, _ = provisioner(tmp_path)
    build = make_build(tmp_path, workdir="src")
    build.directory.mkdir(parents=True)
    (build.directory / "stale").write_text("old")
    prov.ensure(build)
    assert not (build.directory / "stale").exists()
    assert (build.directory / "src").is_dir()


# ---- failures ------------------------------------------------------------------------------------------
def test_a_failed_command_names_the_tool_and_shows_the_log_tail(tmp_path):
    def steps(ctx):
        ctx.run("sh", "-c", "for i in $(seq 1 60); do echo line $i; done; echo 'fatal: no such module' >&2; exit 3")

    prov, _ = provisioner(tmp_path)
    build = make_build(tmp_path, steps=steps)
    with pytest.raises(BuildFailed) as failure:
        prov.ensure(build)
    message = str(failure.value)
    assert message.startswith("building tool 1.0.0 failed: `sh -c")
    assert "exited with status 3" in message
    assert str(build.log_path) in message
    assert "    fatal: no such module" in message
    assert "    line 60" in message and "line 10\n" not in message  # only the tail
    assert not build.marker.exists()


def test_an_exception_in_the_steps_is_a_build_failure_with_its_traceback(tmp_path):
    def steps(ctx):
        ctx.note("checking the version")
        raise ProvisionError("tool reports version '0.9', expected '1.0.0'")

    prov, _ = provisioner(tmp_path)
    with pytest.raises(BuildFailed, match=r"(?s)building tool 1.0.0 failed: ProvisionError: tool reports.*"
                                          r"checking the version.*Traceback"):
        prov.ensure(make_build(tmp_path, steps=steps))


def test_missing_outputs_fail_the_build(tmp_path):
    prov, _ = provisioner(tmp_path)
    with pytest.raises(BuildFailed, match="did not produce .*tool"):
        prov.ensure(make_build(tmp_path, steps=lambda ctx: None))


def test_a_missing_build_tool_is_named_before_building(tmp_path):
    prov, _ = provisioner(tmp_path)
    prov.env = {"PATH": str(tmp_path)}
    with pytest.raises(ProvisionError, match="'no-such-compiler' is not on PATH but is needed to build tool 1.0.0"):
        prov.ensure(make_build(tmp_path, tool="no-such-compiler"))


# ---- lock, files, env file -------------------------------------------------------------------------------
def test_the_lock_excludes_a_second_holder(tmp_path):
    prov, _ = provisioner(tmp_path)
    with prov.lock():
        with open(tmp_path / "cache" / ".lock", "a") as other:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with open(tmp_path / "cache" / ".lock", "a") as other:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_write_if_changed_leaves_an_unchanged_file_alone(tmp_path):
    path = tmp_path / "d" / "file.sh"
    assert engine.write_if_changed(path, "a\n", 0o755) is True
    assert oct(path.stat().st_mode & 0o777) == "0o755"
    mtime = path.stat().st_mtime_ns
    assert engine.write_if_changed(path, "a\n", 0o755) is False
    assert path.stat().st_mtime_ns == mtime
    assert engine.write_if_changed(path, "b\n", 0o755) is True
    assert path.read_text() == "b\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.sh"]  # no temp files left


def test_env_file_puts_the_first_directory_first_and_quotes_values(tmp_path):
    text = engine.env_file_text("scripts/x.sh", ["/opt/first dir", "/opt/second"],
                                {"DATAPIPE_A": "it's", "DATAPIPE_B": "/x y/z"})
    assert text.startswith("# Generated by scripts/x.sh - source this file; do not edit.\n")
    env_file = tmp_path / "env.sh"
    env_file.write_text(text)
    script = 'PATH="$2"; source "$1"; source "$1"; echo "$PATH"; echo "$DATAPIPE_A"; echo "$DATAPIPE_B"'
    out = subprocess.run(["bash", "-c", script, "x", str(env_file), "/usr/bin:/bin"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["/opt/first dir:/opt/second:/usr/bin:/bin", "it's", "/x y/z"]


@pytest.mark.parametrize("before, after", [
    ("/usr/bin:/opt/second:/bin", "/opt/first:/opt/second:/usr/bin:/bin"),  # moved to the front
    ("/opt/second:/usr/bin:/opt/second", "/opt/first:/opt/second:/usr/bin"),
    ("", "/opt/first:/opt/second"),                                        # no stray empty entry
])
def test_env_file_moves_its_directories_to_the_front(tmp_path, before, after):
    env_file = tmp_path / "env.sh"
    env_file.write_text(engine.env_file_text("x", ["/opt/first", "/opt/second"], {}))
    out = subprocess.run(["bash", "-c", 'PATH="$2"; source "$1"; printf %s "$PATH"', "x", str(env_file), before],
                         capture_output=True, text=True, check=True).stdout
    assert out == after


def test_symlink_replaces_a_link_and_reports_changes(tmp_path):
    link = tmp_path / "weed"
    assert engine.symlink(tmp_path / "a", link) is True
    assert engine.symlink(tmp_path / "a", link) is False
    assert engine.symlink(tmp_path / "b", link) is True
    assert os.readlink(link) == str(tmp_path / "b")


# ---- command line -------------------------------------------------------------------------------------
def run_main(tmp_path, args, run=None):
    out, err = io.StringIO(), io.StringIO()
    env_file = tmp_path / "cache" / "env.sh"

    def default_run(prov):
        prov.log("working")
        return env_file
    code = engine.main(args, script="x.sh", tag="x", doc="  x.sh - does things\n\n  Usage: ...\n",
                       run=run or default_run, cache=tmp_path / "cache", stream=err, stdout=out)
    return code, out.getvalue(), err.getvalue()


def test_cli_print_env_file_prints_only_the_path_on_stdout(tmp_path):
    code, out, err = run_main(tmp_path, ["--print-env-file"])
    assert (code, out) == (0, f"{tmp_path / 'cache' / 'env.sh'}\n")
    assert "[x] working" in err and "[x] done in" in err and "use: source" not in err


def test_cli_without_arguments_also_says_how_to_source(tmp_path):
    code, out, err = run_main(tmp_path, [])
    assert code == 0 and out.strip().endswith("env.sh")
    assert 'use: source "$(bash scripts/x.sh --print-env-file)"' in err


def test_cli_help_and_unknown_arguments(tmp_path):
    assert run_main(tmp_path, ["--help"])[:2] == (0, "x.sh - does things\n\nUsage: ...\n")
    code, out, err = run_main(tmp_path, ["--bogus"])
    assert (code, out) == (2, "") and "unknown argument: --bogus" in err


def test_cli_reports_an_error_with_the_tag_and_exit_status_1(tmp_path):
    def failing(prov):
        raise ProvisionError("building tool 1.0.0 failed: boom")
    code, out, err = run_main(tmp_path, [], failing)
    assert (code, out) == (1, "")
    assert "[x] ERROR: building tool 1.0.0 failed: boom" in err
