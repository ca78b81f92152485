"""Pipeline benchmark: prints figures, asserts nothing. Run with ``nox -s bench``.

Measured in one run on a throwaway clone (sharing the project's DVC cache), so the ratios compare
figures taken on the same machine at the same time:

* in-process: every stage's ``main()`` called in one Python process (the baseline);
* ``dvc repro --force``: the same stages as DVC runs them, one process each (overhead = ratio);
* a no-op ``dvc repro`` and a params-only change (train and evaluate re-run);
* peak resident memory of each stage run as its own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "validate", "featurize", "train", "evaluate")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True, text=True)


def peak_rss_mib(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Peak resident memory of one child process, from the kernel's accounting (``wait4``)."""
    child = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"{' '.join(args)} exited {child.returncode}")
    return usage.ru_maxrss / 1024


def in_process(repo: Path, env: dict[str, str]) -> float:
    """All stages in this process, after their modules are imported (import time counts)."""
    code = (
        "import time, importlib; t = time.perf_counter()\n"
        f"for s in {STAGES!r}:\n"
        "    assert importlib.import_module(f'flightdelay.stages.{s}').main([]) == 0\n"
        "print(time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        repo = Path(tmp) / "repo"
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        dvc = [sys.executable, "-m", "dvc"]
        run(["git", "clone", "--quiet", str(ROOT), str(repo)], ROOT, env)
        run([*dvc, "cache", "dir", "--local", str(ROOT / ".dvc" / "cache")], repo, env)
        run([*dvc, "checkout", "data.dvc"], repo, env)

        baseline = in_process(repo, env)
        full = timed(lambda: run([*dvc, "repro", "--force"], repo, env))
        noop = timed(lambda: run([*dvc, "repro"], repo, env))
        params = repo / "params.yaml"
        original = params.read_text()
        params.write_text(original.replace("max_iter: 300", "max_iter: 301", 1))
        params_only = timed(lambda: run([*dvc, "repro"], repo, env))
        params.write_text(original)
        memory = {s: peak_rss_mib([sys.executable, "-m", f"flightdelay.stages.{s}"], repo, env) for s in STAGES}

    print(f"{'measure':<42}{'seconds':>10}")
    print(f"{'stages in one process (baseline)':<42}{baseline:>10.1f}")
    print(f"{'dvc repro --force (all stages)':<42}{full:>10.1f}   overhead x{full / baseline:.2f}")
    print(f"{'dvc repro, nothing changed':<42}{noop:>10.1f}")
    print(f"{'dvc repro after a train param change':<42}{params_only:>10.1f}   x{params_only / full:.2f} of full")
    print()
    print(f"{'stage':<12}{'peak RSS MiB':>14}")
    for stage, mib in memory.items():
        print(f"{stage:<12}{mib:>14.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
