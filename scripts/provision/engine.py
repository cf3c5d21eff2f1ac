"""The build engine shared by scripts/toolchain.sh and scripts/services.sh.

Both build pinned tools once into a cache directory outside the repo and write an env file there
that callers source. This module holds what they have in common:

- ``Build``: one cached build (a directory, a Python function that fills it, what it depends on);
- ``Provisioner.ensure``: skip a build whose fingerprint matches its ``.complete`` marker and whose
  outputs exist; otherwise empty its directory, run it with a log and a timer, and on failure raise
  an error that names the tool and shows the tail of the log;
- ``fingerprint``: a hash of the build's name and version, the pins its code names, the source of
  its functions and the content of its source files (editing any of them rebuilds it);
- ``Provisioner.lock``: one run at a time per cache directory (flock);
- ``write_if_changed`` / ``env_file_text``: atomic writes that leave unchanged files alone;
- ``main``: the command line of both wrappers (no argument, ``--print-env-file``, ``--help``).

Standard library only: this runs with the system python3 before any virtualenv exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import inspect
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, TextIO

FINGERPRINT_SCHEME = "datapipe-provision-1"  # bump to rebuild everything once
LOG_TAIL_LINES = 40


class ProvisionError(Exception):
    """A failure reported as ``[tag] ERROR: <message>`` (exit status 1)."""


class BuildFailed(ProvisionError):
    """A build step failed; the message names the tool and carries the tail of its log."""


class CommandFailed(Exception):
    """A command run by a build step exited with a non-zero status."""

    def __init__(self, args: Sequence[str], returncode: int):
        self.args_ = list(args)
        self.returncode = returncode
        super().__init__(f"`{shlex.join(self.args_[:4])}{' ...' if len(self.args_) > 4 else ''}` "
                         f"exited with status {returncode}")


@dataclass
class Build:
    """One cached build.

    ``steps(ctx)`` runs with ``ctx.workdir`` (``directory/workdir``) as the current directory for
    commands, after ``directory`` was emptied; everything it prints goes to ``directory/build.log``.
    ``pins`` maps every pinned version of the calling module to its value: the fingerprint takes
    those whose name appears in the source of ``steps`` or of a function in ``code``.
    """

    name: str                                   # what the messages call it: "pulumi", "kafka"
    version: str
    directory: Path                             # build.log, .complete, .build-seconds live here
    steps: Callable[["BuildContext"], None]
    tool: str | None = None                     # executable the steps need (go, mvn), checked first
    pins: Mapping[str, str] = field(default_factory=dict)
    code: Sequence[Callable] = ()               # helpers whose source is part of the fingerprint
    sources: Sequence[Path] = ()                # files or directories whose content is, too
    extra: Mapping[str, str] = field(default_factory=dict)  # further inputs (paths, class lists)
    outputs: Sequence[Path] = ()                # must exist after the build (absolute paths)
    workdir: str = ""                           # relative to directory; "" = directory itself

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def log_path(self) -> Path:
        return self.directory / "build.log"

    @property
    def marker(self) -> Path:
        return self.directory / ".complete"


def _source_of(fn: Callable) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):  # built-ins, lambdas defined at a prompt: use the name
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def _files_of(source: Path) -> Iterator[tuple[str, Path]]:
    """(name relative to the source's parent, path) for a file, or every file under a directory."""
    if source.is_dir():
        for root, dirs, files in os.walk(source):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if not name.endswith(".pyc"):
                    path = Path(root) / name
                    yield str(path.relative_to(source.parent)), path
    else:
        yield source.name, source


def pins_used(build: Build) -> dict[str, str]:
    """The pins whose name appears (as a word) in the source of the build's functions."""
    text = "\n".join(_source_of(fn) for fn in (build.steps, *build.code))
    return {k: v for k, v in sorted(build.pins.items()) if re.search(rf"\b{re.escape(k)}\b", text)}


def fingerprint(build: Build) -> str:
    """Hash of everything the build depends on (see the module docstring)."""
    h = hashlib.sha256()

    def add(kind: str, name: str, data: bytes) -> None:
        for part in (kind.encode(), name.encode(), data):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)

    add("scheme", FINGERPRINT_SCHEME, b"")
    add("build", build.name, build.version.encode())
    for key, value in pins_used(build).items():
        add("pin", key, value.encode())
    for key, value in sorted(build.extra.items()):
        add("extra", key, value.encode())
    for fn in (build.steps, *build.code):
        add("code", getattr(fn, "__qualname__", "?"), _source_of(fn).encode())
    for source in build.sources:
        if not source.exists():
            raise ProvisionError(f"{build.label}: source {source} is missing")
        for name, path in _files_of(source):
            add("file", name, path.read_bytes())
    return h.hexdigest()


class BuildContext:
    """What a build's steps get: where to write, a log, and ``run`` for commands."""

    def __init__(self, build: Build, log: TextIO, env: Mapping[str, str] | None = None):
        self.build = build
        self.out = build.directory
        self.workdir = build.directory / build.workdir if build.workdir else build.directory
        self.extra = build.extra
        self.log = log
        self.env = dict(os.environ if env is None else env)

    def note(self, text: str) -> None:
        self.log.write(text.rstrip("\n") + "\n")
        self.log.flush()

    def write(self, name: str | Path, text: str) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def run(self, *args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None,
            capture: bool = False, timeout: float | None = None) -> str:
        """Run a command (cwd: the work directory), its output into the log; stdout if ``capture``."""
        argv = [str(a) for a in args]
        self.note(f"$ {shlex.join(argv)}")
        proc = subprocess.run(argv, cwd=cwd or self.workdir, env={**self.env, **(env or {})},
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if capture else self.log,
                              stderr=self.log, text=True, timeout=timeout)
        if proc.returncode != 0:
            if capture and proc.stdout:
                self.note(proc.stdout)
            raise CommandFailed(argv, proc.returncode)
        return proc.stdout if capture else ""


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError as error:
        return f"    (no log: {error})"
    return "\n".join("    " + line for line in text[-lines:])


class Provisioner:
    """Progress on stderr with a tag, a cache directory and its lock, and ``ensure`` for builds."""

    def __init__(self, tag: str, cache: Path, stream: TextIO | None = None,
                 env: Mapping[str, str] | None = None):
        self.tag = tag
        self.cache = Path(cache)
        self.stream = stream
        self.env = env  # environment of build commands (default: this process's)
        self.built: list[str] = []
        self.started = time.monotonic()

    # ---- output -------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        stream = self.stream or sys.stderr
        stream.write(f"[{self.tag}] {message}\n")
        stream.flush()

    # ---- lock ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold ``<cache>/.lock`` (serializes two shells, or CI and a developer, on one cache)."""
        self.cache.mkdir(parents=True, exist_ok=True)
        with open(self.cache / ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.log(f"waiting for another run that holds {self.cache / '.lock'}")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- builds -------------------------------------------------------------------------------
    def is_current(self, build: Build, fp: str | None = None) -> bool:
        try:
            recorded = build.marker.read_text().strip()
        except OSError:
            return False
        return recorded == (fp or fingerprint(build)) and all(p.exists() for p in build.outputs)

    def ensure(self, build: Build) -> bool:
        """Build unless the cached build is current. True if it built."""
        fp = fingerprint(build)
        if self.is_current(build, fp):
            self.log(f"{build.label}: cached in {build.directory} (built in {self.build_seconds(build)}s)")
            return False
        self.run_build(build, fp)
        return True

    @staticmethod
    def build_seconds(build: Build) -> str:
        try:
            return (build.directory / ".build-seconds").read_text().strip()
        except OSError:
            return "?"

    def run_build(self, build: Build, fp: str | None = None) -> None:
        fp = fp or fingerprint(build)
        env = dict(os.environ if self.env is None else self.env)
        if build.tool and not shutil.which(build.tool, path=env.get("PATH")):
            raise ProvisionError(f"'{build.tool}' is not on PATH but is needed to build {build.label} "
                                 f"(see 'Needs' in --help)")
        self.log(f"building {build.label} -> {build.directory} (log: {build.log_path})")
        if build.directory.is_symlink() or build.directory.is_file():
            build.directory.unlink()
        shutil.rmtree(build.directory, ignore_errors=True)
        build.directory.mkdir(parents=True)
        start = time.monotonic()
        with open(build.log_path, "w") as log:
            ctx = BuildContext(build, log, env)
            ctx.workdir.mkdir(parents=True, exist_ok=True)
            reason = None
            try:
                build.steps(ctx)
            except CommandFailed as error:
                reason = str(error)
            except subprocess.TimeoutExpired as error:
                reason = f"`{shlex.join(map(str, error.cmd))}` timed out after {error.timeout}s"
            except Exception as error:  # a bug or a failed check in the steps: keep the traceback
                log.write(traceback.format_exc())
                reason = f"{type(error).__name__}: {error}"
            if reason is None:
                missing = [str(p) for p in build.outputs if not p.exists()]
                if missing:
                    reason = "it did not produce " + ", ".join(missing)
                    log.write(f"missing outputs: {missing}\n")
        if reason is not None:
            raise BuildFailed(f"building {build.label} failed: {reason}. "
                              f"Last lines of {build.log_path}:\n{log_tail(build.log_path)}")
        seconds = round(time.monotonic() - start)
        (build.directory / ".build-seconds").write_text(f"{seconds}\n")
        build.marker.write_text(fp + "\n")
        self.built.append(f"{build.label} {seconds}s")
        self.log(f"built {build.label} in {seconds}s")

    def summary(self) -> str:
        took = f"{time.monotonic() - self.started:.1f}s"
        return f"done in {took}" + (f" (built: {', '.join(self.built)})" if self.built else " (nothing to build)")


# ---- files ------------------------------------------------------------------------------------------
def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` atomically (a reader never sees half a file), only if it differs.

    True if the file was written."""
    path = Path(path)
    try:
        if path.read_text() == text and (path.stat().st_mode & 0o777) == mode:
            return False
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


def symlink(target: Path, link: Path) -> bool:
    """Point ``link`` at ``target`` (atomically replacing another link). True if it changed."""
    link = Path(link)
    if link.is_symlink() and os.readlink(link) == str(target):
        return False
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return True


def env_file_text(generator: str, path_dirs: Sequence[Path | str], exports: Mapping[str, str]) -> str:
    """A file to ``source``: ``path_dirs`` prepended to PATH (the first one first, none twice), then
    ``export NAME=value`` for each of ``exports``."""
    lines = [f"# Generated by {generator} - source this file; do not edit."]
    if path_dirs:
        lines.append("for _datapipe_dir in \\")
        # Each one is moved to the front in turn: reversed, so that the first ends up first on PATH
        # (also when it was on PATH already, behind another `pulumi` or `java`).
        lines += [f"  {shlex.quote(str(d))} \\" for d in reversed(list(path_dirs))]
        lines += ["  ; do",
                  '  _datapipe_path=":$PATH:"',
                  '  while case "$_datapipe_path" in *":$_datapipe_dir:"*) true ;; *) false ;; esac; do',
                  '    _datapipe_path="${_datapipe_path%%":$_datapipe_dir:"*}:${_datapipe_path#*":$_datapipe_dir:"}"',
                  "  done",
                  '  _datapipe_path="${_datapipe_path#:}"',
                  '  _datapipe_path="${_datapipe_path%:}"',
                  '  PATH="$_datapipe_dir${_datapipe_path:+:$_datapipe_path}"',
                  "done",
                  "unset _datapipe_dir _datapipe_path",
                  "export PATH"]
    lines += [f"export {name}={shlex.quote(str(value))}" for name, value in exports.items()]
    return "\n".join(lines) + "\n"


def add_default_go_to_path(env: dict[str, str] | None = None) -> None:
    """Non-login shells often lack /usr/local/go/bin: add it when go is not on PATH otherwise."""
    env = os.environ if env is None else env
    if not shutil.which("go", path=env.get("PATH")) and os.access("/usr/local/go/bin/go", os.X_OK):
        env["PATH"] = "/usr/local/go/bin" + os.pathsep + env.get("PATH", "")


# ---- command line ---------------------------------------------------------------------------------
def main(argv: Sequence[str], *, script: str, tag: str, doc: str,
         run: Callable[[Provisioner], Path], cache: Path, stream: TextIO | None = None,
         stdout: TextIO | None = None) -> int:
    """The CLI of scripts/<script>: no argument (progress on stderr, the env file's path on stdout),
    ``--print-env-file`` (the same, without the hint how to source it), ``-h``/``--help``."""
    out = stdout or sys.stdout
    err = stream or sys.stderr
    args = list(argv)
    if len(args) > 1 or (args and args[0] not in ("--print-env-file", "-h", "--help")):
        err.write(f"{script}: unknown argument: {' '.join(args)} (try --help)\n")
        return 2
    if args and args[0] in ("-h", "--help"):
        out.write(inspect.cleandoc(doc) + "\n")
        return 0
    provisioner = Provisioner(tag, cache, stream=err)
    try:
        env_file = run(provisioner)
    except ProvisionError as error:
        err.write(f"[{tag}] ERROR: {error}\n")
        return 1
    except KeyboardInterrupt:
        err.write(f"[{tag}] interrupted\n")
        return 130
    provisioner.log(provisioner.summary())
    if not args:
        provisioner.log(f'env file: {env_file}  (use: source "$(bash scripts/{script} --print-env-file)")')
    out.write(f"{env_file}\n")
    out.flush()
    return 0
