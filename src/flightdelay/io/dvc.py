"""Running DVC: getting the raw data into place and recording new batches in ``data.dvc``."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from flightdelay.interface import SampleError, period_label


class DvcError(RuntimeError):
    """A DVC command failed or the data does not match its ``.dvc`` file."""


def _dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False)


def run(*args: str, cwd: Path) -> str:
    """Run ``dvc args`` with this interpreter's DVC; raise :class:`DvcError` with its output on failure."""
    done = _dvc(*args, cwd=cwd)
    if done.returncode != 0:
        raise DvcError(f"dvc {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def up_to_date(root: Path, stage: str) -> bool:
    """Whether ``stage``'s dependencies and outputs are what ``dvc.lock`` records (``dvc status --quiet``)."""
    return _dvc("status", "--quiet", stage, cwd=root).returncode == 0


def outputs(pointer: Path) -> list[dict[str, object]]:
    """The outputs recorded in a ``.dvc`` file."""
    try:
        outs = yaml.safe_load(pointer.read_text(encoding="utf-8"))["outs"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
        raise DvcError(f"{pointer}: not a readable .dvc file: {exc}") from exc
    if not isinstance(outs, list) or not outs or not all(isinstance(o, dict) and "path" in o for o in outs):
        raise DvcError(f"{pointer}: expected a list of outputs, each with a path")
    return outs


def tracked_path(root: Path, pointer: Path) -> Path:
    """The raw directory ``pointer`` records: its one output, or the directory holding its outputs (and, for a
    problem with database snapshots, holding those beside them)."""
    from flightdelay.problem import PROBLEM

    paths = [os.path.normpath((root / pointer).parent / str(out["path"])) for out in outputs(root / pointer)]
    raw = Path(paths[0] if len(paths) == 1 else os.path.commonpath(paths))

    def holds_snapshots(directory: Path) -> bool:
        return any((directory / f"{name}.dvc").is_file() for name in PROBLEM.database_snapshots)

    if len(paths) == 1 and not holds_snapshots(raw) and holds_snapshots(raw.parent):
        return raw.parent  # one directory of files, the snapshots beside it
    return raw


def data_hash(root: Path, pointer: Path) -> str:
    """What identifies the data ``pointer`` records: its outputs' hashes, in order, joined by commas."""
    return ",".join(str(out.get("md5", "")) for out in outputs(root / pointer))


def snapshots(root: Path, raw: Path) -> list[Path]:
    """The ``.dvc`` files of the problem's database snapshots in ``raw`` (relative to ``root``), where present."""
    from flightdelay.problem import PROBLEM

    found = [raw / f"{name}.dvc" for name in PROBLEM.database_snapshots]
    return [path.relative_to(root) for path in found if path.is_file()]


def default_remote(root: Path) -> str | None:
    """The name of the default DVC remote, or None when none is configured."""
    done = _dvc("remote", "default", cwd=root)
    name = done.stdout.strip()
    return name if done.returncode == 0 and name else None


def in_sync(root: Path, pointer: Path) -> bool:
    """Whether the workspace matches ``pointer``: ``dvc status --quiet`` exits 0 without changes, 1 with."""
    done = _dvc("status", "--quiet", str(pointer), cwd=root)
    if done.returncode not in (0, 1):
        raise DvcError(f"dvc status {pointer} failed:\n{done.stdout}{done.stderr}")
    return done.returncode == 0


def _output_paths(root: Path, pointer: Path) -> list[Path]:
    return [(root / pointer).parent / str(out["path"]) for out in outputs(root / pointer)]


def _remove(paths: list[Path]) -> None:
    """Never leave unverified data behind: remove what was written for these outputs."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def seed(root: Path, pointer: Path) -> list[int]:
    """Write the sample months that ``pointer`` records and prove the bytes match it, then the database snapshots.

    ``dvc commit --force`` hashes the new files the way DVC always does and stores them in the
    cache; the pointer is then put back byte for byte, and a different hash is an error that
    removes what was written.
    """
    from flightdelay.problem import PROBLEM

    recorded = outputs(root / pointer)
    raw = tracked_path(root, pointer)
    nfiles = sum(int(str(out.get("nfiles", 0))) for out in recorded)
    periods = PROBLEM.sample_layout(nfiles)
    if not periods:
        raise DvcError(
            f"{pointer} records {nfiles} files, which is not a sample layout; configure a remote and dvc pull"
        )
    original, expected = (root / pointer).read_bytes(), data_hash(root, pointer)
    written = _output_paths(root, pointer)
    try:
        PROBLEM.write_sample(raw, periods)
    except SampleError as exc:
        raise DvcError(f"cannot write the sample: {exc}") from exc
    try:
        run("commit", "--force", str(pointer), cwd=root)
        produced = data_hash(root, pointer)
    except DvcError:
        _remove(written)
        raise
    finally:
        (root / pointer).write_bytes(original)
    if produced != expected:
        _remove(written)
        raise DvcError(
            f"the sample hashes to {produced}, but {pointer} records {expected}; "
            "the data is your own or the package changed: configure a DVC remote and run dvc pull"
        )
    seed_snapshots(root, raw)
    return periods


def seed_snapshots(root: Path, raw: Path) -> list[Path]:
    """Take the database snapshots in ``raw`` whose files are missing, and prove each is what its ``.dvc`` records.

    Each is taken with ``dvc update`` from its connection; the project's ``sample`` connection (an SQLite file)
    is written from the sample first when missing. The ``.dvc`` file is put back byte for byte, and a snapshot
    that hashes differently is removed with an error naming it.
    """
    from flightdelay.io import database
    from flightdelay.problem import PROBLEM

    taken = []
    for pointer in snapshots(root, raw):
        (out,) = _output_paths(root, pointer)
        if out.exists():
            continue
        if _connection_url(root, _connection(root, pointer)) == database.SAMPLE_URL:
            try:
                database.write_sample_database(root, PROBLEM.sample_database())
            except database.DatabaseError as exc:
                raise DvcError(f"cannot write the sample database: {exc}") from exc
        original = (root / pointer).read_bytes()
        recorded = data_hash(root, pointer)
        try:
            run("update", str(pointer), cwd=root)
            produced = data_hash(root, pointer)
        except DvcError:
            out.unlink(missing_ok=True)
            raise
        finally:
            (root / pointer).write_bytes(original)
        if produced != recorded:
            out.unlink(missing_ok=True)
            raise DvcError(
                f"the database snapshot {out.relative_to(root)} hashes to {produced}, but {pointer} records "
                f"{recorded}: the database changed since it was taken (`dvc update {pointer}` records the new "
                "snapshot), or configure a DVC remote and run dvc pull"
            )
        taken.append(out)
    return taken


def _connection(root: Path, pointer: Path) -> str:
    """The name of the connection a snapshot's ``.dvc`` file takes it from."""
    try:
        deps = yaml.safe_load((root / pointer).read_text(encoding="utf-8")).get("deps") or []
        return str(deps[0]["db"]["connection"])
    except (OSError, KeyError, IndexError, TypeError, AttributeError, yaml.YAMLError) as exc:
        raise DvcError(f"{pointer}: not a database snapshot's .dvc file: {exc}") from exc


def _connection_url(root: Path, name: str) -> str | None:
    """The URL DVC's merged config (config.local over config) gives the connection ``name``, if any."""
    done = _dvc("config", f"db.{name}.url", cwd=root)
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def start_data(root: Path, pointer: Path, raw: Path) -> list[int]:
    """A new project's data: write the sample's initial months into ``raw`` and record them in a new ``pointer``.

    For a project whose problem was just replaced: nothing records data yet. The pointer and the data
    appear together or not at all. A problem with database snapshots gets them taken from the sample
    database into ``raw`` too, each recorded in its own ``.dvc`` file, and ``pointer`` records the rest.
    """
    from flightdelay.problem import PROBLEM

    if (root / pointer).exists():
        raise DvcError(f"{pointer} exists already; `flightdelay get-data` brings in what it records")
    snapshot_files = {f"{name}{suffix}" for name in PROBLEM.database_snapshots for suffix in ("", ".dvc")}
    present = [p.name for p in (root / raw).iterdir()] if (root / raw).is_dir() else []
    if (root / raw).exists() and not set(present) <= snapshot_files | {".gitignore"}:
        raise DvcError(f"{raw} exists but {pointer} does not record it: `dvc add {raw}`, then rename the .dvc file")
    periods = PROBLEM.initial_periods()
    before = set(present)
    try:
        PROBLEM.write_sample(root / raw, periods)
    except SampleError as exc:
        raise DvcError(f"cannot write the sample: {exc}") from exc
    if PROBLEM.database_snapshots:
        written = sorted(p.name for p in (root / raw).iterdir() if p.name not in before)
        targets = [root / raw / name for name in written]
    else:
        targets = [root / raw]
    outs = "".join(f"- path: {Path(os.path.relpath(t, (root / pointer).parent)).as_posix()}\n" for t in targets)
    try:
        (root / pointer).write_text(f"outs:\n{outs}")
        run("commit", "--force", str(pointer), cwd=root)
        _start_snapshots(root, root / raw)
    except (DvcError, OSError):
        (root / pointer).unlink(missing_ok=True)
        _remove(targets)
        raise
    return periods


def _start_snapshots(root: Path, raw: Path) -> None:
    """Take the problem's database snapshots that no ``.dvc`` file records yet from the sample database."""
    from flightdelay.io import database
    from flightdelay.problem import PROBLEM

    seed_snapshots(root, raw)
    missing = {name: query for name, query in PROBLEM.database_snapshots.items() if not (raw / f"{name}.dvc").exists()}
    if not missing:
        return
    if _connection_url(root, database.SAMPLE_CONNECTION) is None:
        run("config", f"db.{database.SAMPLE_CONNECTION}.url", database.SAMPLE_URL, cwd=root)
    try:
        database.write_sample_database(root, PROBLEM.sample_database())
    except database.DatabaseError as exc:
        raise DvcError(f"cannot write the sample database: {exc}") from exc
    for name, query in missing.items():
        out = (raw / name).relative_to(root).as_posix()
        run("import-db", "--sql", query, "--conn", database.SAMPLE_CONNECTION, "-o", out, cwd=root)


def get_data(root: Path, pointer: Path, raw: Path | None = None) -> str:
    """Bring the raw data ``pointer`` records into the workspace: pull from the remote, or seed the sample.

    Without ``pointer`` (a new problem, no data recorded yet), the sample's initial months are written to
    ``raw`` and recorded in a new ``pointer``.
    """
    if raw is not None and not (root / pointer).exists():
        periods = start_data(root, pointer, raw)
        return (
            f"wrote the sample ({len(periods)} months, {period_label(periods[0])} to {period_label(periods[-1])}) "
            f"into {raw} and recorded it in {pointer}: commit {pointer}"
        )
    raw = tracked_path(root, pointer)
    targets = [pointer, *snapshots(root, raw)]
    present = {t: [path.exists() for path in _output_paths(root, t)] for t in targets}
    partial = [str(t) for t, found in present.items() if any(found) and not all(found)]
    if partial:
        raise DvcError(
            f"part of what {', '.join(partial)} records is missing from the workspace: `dvc checkout "
            f"{' '.join(partial)}` restores it from the cache, `dvc pull {' '.join(partial)}` from the remote"
        )
    missing = [t for t, found in present.items() if not any(found)]
    named = ", ".join(map(str, targets))
    if not missing:
        stale = [str(t) for t in targets if not in_sync(root, t)]
        if not stale:
            return f"{raw.relative_to(root)} already matches {named}"
        raise DvcError(
            f"{raw.relative_to(root)} differs from {', '.join(stale)}: `dvc checkout {' '.join(stale)}` restores the "
            f"recorded data, `dvc commit {' '.join(stale)}` records yours"
        )
    remote = default_remote(root)
    pulled: DvcError | None = None
    if remote:
        try:
            # Hash what is downloaded (config.local, untracked): a remote object that is not what its name
            # claims is refused, not checked out; the pipeline's own check covers what the cache already holds.
            run("remote", "modify", "--local", remote, "verify", "true", cwd=root)
            run("pull", *map(str, missing), cwd=root)
            # The run-cache lets `dvc repro` restore stages the base branch already ran.
            run("fetch", "--run-cache", cwd=root)
        except DvcError as exc:
            # A fork's CI has the remote's address but not its credentials: the sample may still do.
            pulled = exc
        else:
            return f"pulled {', '.join(map(str, missing))} from DVC remote {remote!r}"
    if pulled:
        _remove([path for t in missing for path in _output_paths(root, t)])  # a partial pull
    try:
        if pointer in missing:
            months = seed(root, pointer)
            said = f"wrote the sample ({len(months)} months) into {raw.relative_to(root)}; it matches {named}"
        else:
            seed_snapshots(root, raw)
            said = f"took the database snapshots {', '.join(map(str, missing))} from their connection; they match"
    except DvcError as exc:
        if pulled:
            raise DvcError(f"{pulled}\nand the sample does not match {named} either: {exc}") from exc
        raise
    fallback = f" (dvc pull from {remote!r} failed, so the sample stands in)" if pulled else ""
    return f"{said}{fallback}"


def add_month(root: Path, pointer: Path, period: int) -> list[Path]:
    """Add a held-back sample month (YYYYMM) to the raw data and record it in ``pointer``."""
    from flightdelay.problem import PROBLEM

    raw = tracked_path(root, pointer)
    if not raw.exists():
        raise DvcError(f"{raw.relative_to(root)} is missing; get the data first (flightdelay get-data)")
    if not in_sync(root, pointer):
        raise DvcError(f"{raw.relative_to(root)} has changes not recorded in {pointer}; commit or check them out first")
    if period in PROBLEM.periods_present(raw):
        raise DvcError(f"{period_label(period)} is already in {raw.relative_to(root)}")
    try:
        written = PROBLEM.add_period(raw, period)
    except SampleError as exc:
        raise DvcError(str(exc)) from exc
    try:
        run("commit", "--force", str(pointer), cwd=root)
    except DvcError:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def cache_object(root: Path, md5: str) -> Path:
    """Where DVC 3 keeps the object with this hash in the project's cache."""
    configured = _dvc("cache", "dir", cwd=root).stdout.strip()
    cache = Path(configured) if configured else root / ".dvc" / "cache"
    if not cache.is_absolute():
        cache = root / cache
    return cache / "files" / "md5" / md5[:2] / md5[2:]


def manifest(root: Path, dir_md5: str) -> dict[str, str] | None:
    """``{relpath: md5}`` of a tracked directory, from its ``.dir`` object; None if not in the cache."""
    path = cache_object(root, dir_md5)
    if not path.is_file():
        return None
    entries = json.loads(path.read_text(encoding="utf-8"))
    return {entry["relpath"]: entry["md5"] for entry in entries}


def count_rows(root: Path, md5: str) -> int | None:
    """Data rows (lines after the header) of a cached CSV object, or None if not in the cache."""
    path = cache_object(root, md5)
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return max(sum(1 for _ in handle) - 1, 0)


@contextlib.contextmanager
def _revision_tree(root: Path, rev: str) -> Iterator[Path]:
    """A temporary git worktree at ``rev`` that shares this project's DVC cache, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="base-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), rev], cwd=root, check=True)
        try:
            run("cache", "dir", "--local", str(cache_object(root, "00").parents[2]), cwd=tree)
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=root, check=False)


def _fetch(tree: Path, target: Path) -> None:
    """``dvc fetch target`` in ``tree`` when it has a remote; a remote without the files is not an error here."""
    if default_remote(tree):
        with contextlib.suppress(DvcError):
            run("fetch", str(target), cwd=tree)  # exits 0 even when the remote lacks the files


def cache_revision(root: Path, rev: str, pointer: Path) -> None:
    """Put the data that ``pointer`` records at ``rev`` into this project's cache.

    In a worktree at ``rev`` that shares the cache, the data is fetched from the remote or, failing that,
    the sample is written and hashed, so both versions can be compared file by file.
    """
    with _revision_tree(root, rev) as tree:
        raw = tracked_path(tree, pointer)
        taken = snapshots(tree, raw)
        for target in [pointer, *taken]:
            _fetch(tree, target)

        def cached(target: Path) -> bool:
            return all(cache_object(root, str(out.get("md5", ""))).is_file() for out in outputs(tree / target))

        # No remote, none this job may read (a fork's PR), or the data was never pushed: the sample may do.
        if not cached(pointer):
            seed(tree, pointer)
        elif not all(cached(target) for target in taken):
            seed_snapshots(tree, raw)


class IntegrityError(DvcError):
    """A pipeline output's bytes are not the ones ``dvc.lock`` records."""


def recorded_md5(root: Path, stage: str, path: Path, rev: str | None = None) -> str:
    """The md5 that ``dvc.lock`` (of the working tree, or of commit ``rev``) records for ``path`` of ``stage``."""
    try:
        if rev is None:
            text = (root / "dvc.lock").read_text(encoding="utf-8")
        else:
            text = subprocess.run(
                ["git", "show", f"{rev}:dvc.lock"], cwd=root, capture_output=True, text=True, check=True
            ).stdout
        outs = yaml.safe_load(text)["stages"][stage]["outs"]
    except (OSError, KeyError, TypeError, yaml.YAMLError, subprocess.CalledProcessError) as exc:
        where = "dvc.lock" if rev is None else f"dvc.lock at {rev[:10]}"
        raise IntegrityError(f"{where} records no stage {stage!r} with outputs ({exc}); run `dvc repro`") from exc
    for out in outs:
        if Path(out["path"]) == path:
            return str(out["md5"])
    raise IntegrityError(f"dvc.lock records no output {path} for stage {stage!r}")


def verify_output(root: Path, stage: str, path: Path) -> Path:
    """``root / path``, once its bytes hash to what ``dvc.lock`` records; :class:`IntegrityError` otherwise.

    A model file is code (joblib runs what it unpickles): one restored from a tampered cache or remote
    object keeps the name of the hash it claims, so only hashing its bytes tells. Nothing loads a model
    that fails this.
    """
    recorded = recorded_md5(root, stage, path)
    target = root / path
    if not target.is_file():
        raise IntegrityError(f"{path} is missing; `dvc checkout` restores it, `dvc repro` rebuilds it")
    digest = _md5(target)
    if digest != recorded:
        raise IntegrityError(
            f"{path} hashes to {digest} but dvc.lock records {recorded}: it is not the file the "
            f"pipeline recorded (a tampered cache or remote object?). Refusing to load it; `dvc checkout --force "
            f"{path}` restores the recorded one if the cache holds it, `dvc repro --force {stage}` rebuilds it"
        )
    return target


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def revision_output(root: Path, rev: str, stage: str, path: Path) -> Path:
    """The cache object of output ``path`` as commit ``rev`` recorded it, fetched from the remote if need be,
    once its bytes hash to that record; :class:`DvcError` when it is nowhere to be had."""
    recorded = recorded_md5(root, stage, path, rev)
    target = cache_object(root, recorded)
    if not target.is_file() and default_remote(root):
        with _revision_tree(root, rev) as tree:
            _fetch(tree, path)
    if not target.is_file():
        raise DvcError(f"{path} as {rev[:10]} recorded it ({recorded}) is neither in the cache nor on a remote")
    if _md5(target) != recorded:
        raise IntegrityError(f"the cached object for {path} at {rev[:10]} does not hash to {recorded}: tampered?")
    return target


def load_model(root: Path, path: Path, stage: str = "train") -> Any:
    """The pipeline's model, loaded only after :func:`verify_output` passed."""
    import joblib

    return joblib.load(verify_output(root, stage, path))


# --- Data that is really there: what the .dvc files record, in the default remote ------------------


def pointers(root: Path) -> list[Path]:
    """Every ``.dvc`` file git tracks: the pipeline's inputs (``data.dvc`` and any import)."""
    done = subprocess.run(["git", "ls-files", "*.dvc"], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DvcError(f"git ls-files failed: {done.stderr.strip()}")
    return [Path(line) for line in done.stdout.splitlines() if line.strip()]


def unpushed(root: Path, targets: list[Path], remote: str | None = None) -> dict[Path, list[str]]:
    """The files each ``.dvc`` file in ``targets`` records that ``remote`` (the default one) does not hold.

    A directory is checked file by file against its listing (the ``.dir`` object), read from the remote or,
    when the remote lacks that too, from the local cache; a listing found in neither is reported as the whole
    directory. :class:`DvcError` when no remote is configured or it cannot be read.
    """
    from dvc.exceptions import DvcException  # type: ignore[import-untyped]
    from dvc.repo import Repo  # type: ignore[import-untyped]

    remote = remote or default_remote(root)
    if remote is None:
        raise DvcError("no default DVC remote is configured: there is nothing to check against")
    found: dict[Path, list[str]] = {}
    try:
        with Repo(str(root)) as repo:
            odb = repo.cloud.get_remote_odb(remote, "status")
            for pointer in targets:
                missing = []
                outs = yaml.safe_load((root / pointer).read_text(encoding="utf-8")).get("outs") or []
                for out in outs:
                    where = (pointer.parent / str(out["path"])).as_posix()
                    missing += _unpushed_out(root, odb, where, str(out.get("md5") or ""))
                if missing:
                    found[pointer] = missing
    except (DvcException, OSError, ValueError, KeyError, AttributeError) as exc:  # S3 errors arrive as OSError
        raise DvcError(f"could not check DVC remote {remote!r} for {', '.join(map(str, targets))}: {exc}") from exc
    return found


def _unpushed_out(root: Path, odb: Any, where: str, md5: str) -> list[str]:
    if not md5:
        return [f"{where} (its .dvc file records no hash: `dvc commit` it)"]
    if not md5.endswith(".dir"):
        return [] if odb.exists(md5) else [where]
    listing = None
    listed = odb.exists(md5)  # the remote holds the listing itself
    if listed:
        with odb.fs.open(odb.oid_to_path(md5), "r") as handle:
            listing = json.load(handle)
    else:
        local = cache_object(root, md5)
        if local.is_file():
            listing = json.loads(local.read_text())
    if listing is None:
        return [f"{where}/ (all of it: the remote and this cache lack its listing {md5})"]
    oids = {entry["md5"]: entry["relpath"] for entry in listing}
    present = set(odb.oids_exist(list(oids)))
    missing = sorted(f"{where}/{relpath}" for oid, relpath in oids.items() if oid not in present)
    return missing if listed else [*missing, f"{where} (its listing, {md5})"]
