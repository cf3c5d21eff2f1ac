"""Syntax-check generated shell scripts with a real POSIX shell."""

import subprocess


def assert_valid_sh(script: str) -> None:
    result = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
