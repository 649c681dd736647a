"""Provenance records: where every number in a result came from.

Every file a pipeline step writes gets a record: the rule, wildcards, inputs with their sha256, params, the config
subset the step used, the git commit and dirty flag, package versions, host, device, random seeds, start and end time,
and the output's own sha256. The record is a JSON sidecar ``<file>.prov.json``; HDF5 outputs also carry it as the
root attribute ``provenance`` (written before the file's checksum is taken). Snakemake's metadata hold no output
checksums, so these records, chained to one another by their own checksums, are what ``tdann audit`` checks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import progress
from .runtime import seed_everything

SIDECAR_SUFFIX = ".prov.json"
log = logging.getLogger("tdann")


class AuditError(RuntimeError):
    """A file's content no longer matches its provenance record."""


def sha256(path: str | Path) -> str:
    """sha256 of a file, or of a folder (the hash of its files' relative paths and hashes, sorted; provenance
    sidecars and Snakemake's own marker files are not content)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        # Snakemake marks directory outputs with a .snakemake_timestamp file after the job: not content
        files = (p for p in path.rglob("*") if p.is_file() and not p.name.endswith(SIDECAR_SUFFIX)
                 and not p.name.startswith(".snakemake"))
        for sub in sorted(files):
            h.update(str(sub.relative_to(path)).encode())
            h.update(sha256(sub).encode())
        return h.hexdigest()
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def digest(path: str | Path) -> str:
    """sha256 of ``path``, taken from its provenance record when the record is at least as new as the file (the
    producing job hashed it once; multi-GB stores should not be re-hashed by every job that keys on them), else
    computed."""
    path = Path(path)
    car = sidecar(path)
    try:
        if car.stat().st_mtime >= path.stat().st_mtime:
            recorded = json.loads(car.read_text()).get("output_sha256")
            if isinstance(recorded, str) and len(recorded) == 64:
                return recorded
    except (OSError, ValueError):
        pass
    return sha256(path)


def sidecar(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _git(*args: str) -> str | None:
    """git in the working directory (the checkout Snakemake runs in), not where this package was installed from."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=os.getcwd())
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def environment() -> dict[str, Any]:
    """Code version, package versions, host and device of this process."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "torchvision", "numpy", "decord", "h5py", "snakemake"):
        mod = sys.modules.get(name)
        version = getattr(mod, "__version__", None) if mod else None
        if version is None:  # from the installed metadata: importing torch just to read its version costs seconds
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                version = importlib.metadata.version(name)
        versions[name] = str(version) if version is not None else None
    device = "cpu"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "versions": versions,
        "host": socket.gethostname(),
        "device": device,
    }


def _plain(value: Any) -> Any:
    """Turn Snakemake containers and numpy scalars into JSON-able plain values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "items") and callable(value.items):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _named(container: Any) -> dict[str, Any]:
    """Snakemake's Namedlist -> {name: value}; entries without a name are gathered under "_"."""
    names = {str(k): _plain(v) for k, v in container.items()} if hasattr(container, "items") else {}
    known = set(_paths(list(names.values())))
    rest = [p for p in _paths(_plain(list(container))) if p not in known]
    if rest:
        names["_"] = rest
    return names


def _paths(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in _paths(v)]
    return []


def make_record(rule: str, wildcards: Mapping, inputs: Mapping[str, Any], params: Mapping, config: Mapping,
                seeds: Mapping[str, int], start: float, end: float, results: str | None = None) -> dict[str, Any]:
    """Build a record (without the output checksum). Inputs are hashed now (folders hash their files; a store's
    hash comes from its own record when that is newer than the file, see :func:`digest`), and an input that has a
    record is chained to it by the record's sha256, so that a record rewritten later is detected."""
    hashed = {}
    for name, value in inputs.items():
        for p in _paths(value):
            if os.path.exists(p):
                hashed[p] = {"name": name, "sha256": digest(p)}
                if sidecar(p).exists():
                    hashed[p]["record_sha256"] = sha256(sidecar(p))
    return {
        "rule": rule,
        "results": results,
        "wildcards": _plain(wildcards),
        "inputs": hashed,
        "params": _plain(params),
        "config": _plain(config),
        "seeds": _plain(seeds),
        "start": dt.datetime.fromtimestamp(start, dt.UTC).isoformat(),
        "end": dt.datetime.fromtimestamp(end, dt.UTC).isoformat(),
        "wall_s": round(end - start, 3),
        **environment(),
    }


def write(path: str | Path, record: Mapping[str, Any]) -> None:
    """Attach ``record`` to the output at ``path``: HDF5 root attribute (if HDF5) plus the JSON sidecar."""
    path = Path(path)
    text = json.dumps(record, sort_keys=True)
    if path.is_file() and path.suffix in (".h5", ".hdf5"):
        import h5py

        with h5py.File(path, "a") as f:
            f.attrs["provenance"] = text
    full = dict(record, output=str(path), output_sha256=sha256(path))
    sidecar(path).write_text(json.dumps(full, indent=1, sort_keys=True))


def read(path: str | Path) -> dict[str, Any]:
    """The record of ``path``; raises AuditError naming the file if it has none."""
    car = sidecar(path)
    if not car.exists():
        raise AuditError(f"{path}: no provenance record ({car.name} missing)")
    return json.loads(car.read_text())


def _inputs(path: str, rec: dict[str, Any]) -> list[tuple[str, dict]]:
    """A record's inputs as paths usable from here.

    Records name files relative to the working directory of the run; that directory is recovered from where the
    audited file is now and the relative name its record gives it, so a moved or copied results tree still audits.
    """
    out = os.path.abspath(path)
    name = rec.get("output", "")
    base = ""
    if name and not os.path.isabs(name) and out.endswith(os.sep + os.path.normpath(name)):
        base = out[: -len(os.path.normpath(name))]
    return [(p if os.path.isabs(p) or not base else os.path.join(base, p), meta) for p, meta in rec["inputs"].items()]


def is_source(path: str | Path) -> bool:
    """Workflow source code: a file under ``workflow/`` of a checkout (a folder holding a ``Snakefile``). Source
    code is the only input a step may have that no step wrote; raw data enter through the dataset step."""
    path = Path(path).resolve()
    for parent in path.parents:
        if parent.name == "workflow" and (parent.parent / "Snakefile").is_file():
            return path.is_file()
    return False


class _Hashes(dict):
    """sha256 per path, computed once per audit."""

    def __missing__(self, path: str) -> str:
        self[path] = sha256(path)
        return self[path]


def _results_root(path: str, rec: dict[str, Any]) -> Path | None:
    """The results folder of the run that wrote ``path`` (None for records that do not name it)."""
    results = rec.get("results")
    if not results:
        return None
    if os.path.isabs(results):
        return Path(results)
    out, name = os.path.abspath(path), os.path.normpath(rec.get("output", ""))
    if name and not os.path.isabs(name) and out.endswith(os.sep + name):
        return Path(out[: -len(name)]) / results
    return None


def _consumer_index(root: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every record under a results folder, inverted: absolute input path -> [(output path, input entry)]."""
    index: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for car in root.rglob(f"*{SIDECAR_SUFFIX}"):
        try:
            other = json.loads(car.read_text())
        except (OSError, ValueError):
            continue
        out = str(car)[: -len(SIDECAR_SUFFIX)]
        for inp, meta in _inputs(out, other):
            index.setdefault(os.path.abspath(inp), []).append((out, meta))
    return index


def audit(paths: list[str | Path]) -> list[str]:
    """Prove the chain of each file back to raw data; returns the files checked, raises AuditError on the first fault.

    * every audited file must have a record, and its content must match the record's checksum;
    * every input named in a record must exist with the recorded checksum; an input that had a record when it was
      consumed must still have that very record (records are chained by their own sha256), and is audited in turn;
    * an input without a record is accepted only if it is workflow source code (:func:`is_source`): the chain ends
      at the dataset steps, whose records hold the configured dataset entry;
    * every other record in the run's results folder that names an audited file as its input must agree with the
      file's content and record, so a file edited together with its own record is caught where anything used it.

    What it cannot detect: a forger who rewrites every record of a chain consistently (there is no signing key).
    """
    hashes = _Hashes()
    checked: list[str] = []
    seen: set[str] = set()
    indexes: dict[Path, dict[str, list[tuple[str, dict[str, Any]]]]] = {}  # one scan per results folder
    for p in map(str, paths):
        if not os.path.exists(p):
            raise AuditError(f"{p}: file is missing")
        if not sidecar(p).exists():
            raise AuditError(f"{p}: no provenance record ({sidecar(p).name} missing): only a file a pipeline step "
                             "wrote can be audited, and a result without its record cannot be trusted")
        rec = read(p)
        root = _results_root(p, rec)
        if root is not None and root.is_dir() and root not in indexes:
            indexes[root] = _consumer_index(root)
        consumers = indexes[root].get(os.path.abspath(p), []) if root in indexes else []
        for consumer, meta in consumers:
            crec = read(consumer) if os.path.exists(consumer) else None
            if crec is None or hashes[consumer] != crec.get("output_sha256"):
                continue  # a stale record (its file was deleted or remade): it vouches for nothing
            if meta.get("sha256") != hashes[p]:
                raise AuditError(f"{p}: content differs from the file {consumer} was made from (its record holds "
                                 "another sha256): the file was altered after use, or the consumer is out of date")
            if "record_sha256" in meta and meta["record_sha256"] != hashes[str(sidecar(p))]:
                raise AuditError(f"{p}: its provenance record was rewritten after {consumer} was made from it")
    todo = [str(p) for p in paths]
    while todo:
        p = todo.pop(0)
        if p in seen:
            continue
        seen.add(p)
        if not os.path.exists(p):
            raise AuditError(f"{p}: file is missing")
        rec = read(p)
        if hashes[p] != rec["output_sha256"]:
            raise AuditError(f"{p}: content no longer matches its provenance record (sha256 changed)")
        for inp, meta in _inputs(p, rec):
            if not os.path.exists(inp):
                raise AuditError(f"{inp}: input of {p} is missing")
            if hashes[inp] != meta["sha256"]:
                raise AuditError(f"{inp}: content no longer matches the record of {p} (sha256 changed)")
            car = str(sidecar(inp))
            if os.path.exists(car):
                if "record_sha256" in meta and hashes[car] != meta["record_sha256"]:
                    raise AuditError(f"{inp}: its provenance record was rewritten after {p} was made from it")
                todo.append(inp)
            elif "record_sha256" in meta:
                raise AuditError(f"{inp}: its provenance record is missing (the record of {p} says it had one)")
            elif is_source(inp):
                checked.append(inp)
                seen.add(inp)
            else:
                raise AuditError(f"{inp}: input of {p} has no provenance record and is not workflow source code; "
                                 "raw data must enter through a dataset step")
        checked.append(p)
    return list(dict.fromkeys(checked))


def graph(paths: list[str | Path]) -> str:
    """The provenance chain as an indented tree: each file, the rule that made it, and its inputs."""
    lines: list[str] = []
    shown: set[str] = set()

    def walk(p: str, depth: int, stack: tuple[str, ...]) -> None:
        pad = "  " * depth
        if p in shown:
            lines.append(f"{pad}{p}  (see above)")
            return
        shown.add(p)
        if not sidecar(p).exists():
            lines.append(f"{pad}{p}  " + ("[workflow source]" if is_source(p) else "[no record]"))
            return
        rec = read(p)
        wc = ",".join(f"{k}={v}" for k, v in rec.get("wildcards", {}).items())
        lines.append(f"{pad}{p}  <- rule {rec['rule']}" + (f" ({wc})" if wc else ""))
        for inp, _ in _inputs(p, rec):
            if inp in stack:
                continue
            walk(inp, depth + 1, stack + (p,))

    for p in paths:
        walk(str(p), 0, ())
    return "\n".join(lines)


def _config_subset(config: Mapping, keys: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        out[key] = _plain(node)
    return out


def describe(path: str | Path, max_items: int = 12) -> str:
    """One log line about a written file: its size and, for HDF5, CSV and JSON, what it holds."""
    path = Path(path)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        return f"{path}: folder, {len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB"
    size = f"{path.stat().st_size / 1e6:.2f} MB"
    try:
        if path.suffix in (".h5", ".hdf5"):
            import h5py

            items: list[str] = []
            with h5py.File(path, "r") as f:
                f.visititems(lambda name, obj: items.append(f"{name} {obj.shape} {obj.dtype}")
                             if isinstance(obj, h5py.Dataset) else None)
            more = f" (+{len(items) - max_items} more)" if len(items) > max_items else ""
            return f"{path}: {size}, {len(items)} datasets: " + "; ".join(items[:max_items]) + more
        if path.suffix == ".csv":
            with open(path) as f:
                header = f.readline().strip().split(",")
                rows = sum(1 for _ in f)
            return f"{path}: {size}, {rows} rows x {len(header)} columns"
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            keys = list(data)[:max_items] if isinstance(data, dict) else []
            return f"{path}: {size}, keys {keys}"
    except Exception as e:  # a description must never fail the step that wrote the file
        return f"{path}: {size} (not described: {type(e).__name__}: {e})"
    return f"{path}: {size}"


@contextlib.contextmanager
def step(smk: Any, config_keys: list[str] | None = None, seeds: Mapping[str, int] | None = None) -> Iterator[dict]:
    """Run a pipeline step inside a Snakemake ``script:``.

    ``smk`` is the ``snakemake`` object (duck-typed: input, output, params, wildcards, rule, config, log, threads).
    Sets up logging to the rule's log file and the torch thread count, seeds RNGs, and on success writes a
    provenance record for every output. Yields a dict the script may fill with extra seeds under ``"seeds"``.
    """
    logfile = next(iter(smk.log)) if len(smk.log) else None
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if logfile:
        Path(logfile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(logfile, mode="w"))
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_cfg = smk.config.get("run", {}) if isinstance(smk.config, Mapping) else {}
    progress.configure(bool(run_cfg.get("progress", False)))
    threads = int(getattr(smk, "threads", 1) or 1)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for a torch imported later
    torch = sys.modules.get("torch")  # scripts that use torch import it before step()
    if torch is not None:
        torch.set_num_threads(threads)
    for out in _paths(list(smk.output)):  # Snakemake removed the old outputs; their records must go with them
        sidecar(out).unlink(missing_ok=True)
    ctx: dict[str, Any] = {"seeds": dict(seeds or {})}
    if "seed" in ctx["seeds"]:
        seed_everything(int(ctx["seeds"]["seed"]))
    start = time.time()
    log.info("rule %s %s", smk.rule, dict(smk.wildcards.items()))
    try:
        yield ctx
    except Exception:
        log.exception("rule %s failed", smk.rule)
        raise
    end = time.time()
    record = make_record(
        rule=smk.rule,
        wildcards=dict(smk.wildcards.items()),
        inputs=_named(smk.input),
        params=_named(smk.params),
        config=_config_subset(smk.config, config_keys or []),
        seeds=ctx["seeds"],
        start=start,
        end=end,
        results=smk.config.get("results") if isinstance(smk.config, Mapping) else None,
    )
    for out in _paths(list(smk.output)):
        if os.path.exists(out):
            write(out, record)
            log.info("wrote %s", describe(out))
    log.info("done in %.1f s", end - start)
