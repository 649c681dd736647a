"""Provenance records and the audit: checksums along the chain, a tampered file is named."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from tdann import cli, provenance


class Namedlist(list):
    """Enough of Snakemake's Namedlist for provenance.step."""

    def __init__(self, items=(), **named):
        super().__init__(list(items) + list(named.values()))
        self._named = named

    def items(self):
        return self._named.items()

    def __getattr__(self, name):
        try:
            return self._named[name]
        except KeyError as err:
            raise AttributeError(name) from err


def fake_smk(tmp_path, rule, inputs, outputs, log_name):
    return SimpleNamespace(
        rule=rule, input=Namedlist(**inputs), output=Namedlist(outputs), params=Namedlist(n=3),
        wildcards=Namedlist(stream="ventral"), log=Namedlist([str(tmp_path / f"{log_name}.log")]),
        config={"sweep": {"alphas": [0.0, 0.25]}, "other": 1, "results": str(tmp_path)}, threads=1,
    )


@pytest.fixture
def chain(tmp_path):
    raw = tmp_path / "raw.txt"  # a dataset step's output: raw data enter the chain with a record
    with provenance.step(fake_smk(tmp_path, "fetch_dataset", {}, [str(raw)], "raw")):
        raw.write_text("raw data")
    mid = tmp_path / "mid.h5"
    with provenance.step(fake_smk(tmp_path, "make_mid", {"raw": str(raw)}, [str(mid)], "mid"),
                         config_keys=["sweep.alphas"], seeds={"seed": 7}), h5py.File(mid, "w") as f:
        f["x"] = np.arange(5)
    final = tmp_path / "final.csv"
    with provenance.step(fake_smk(tmp_path, "make_final", {"mid": str(mid)}, [str(final)], "final")):
        final.write_text("a,b\n1,2\n")
    return raw, mid, final


def test_record_contents(chain):
    raw, mid, _ = chain
    rec = provenance.read(mid)
    assert rec["rule"] == "make_mid"
    assert rec["inputs"][str(raw)]["sha256"] == provenance.sha256(raw)
    assert rec["config"] == {"sweep.alphas": [0.0, 0.25]}
    assert rec["seeds"] == {"seed": 7} and rec["wildcards"] == {"stream": "ventral"}
    assert rec["versions"]["python"] and "git_dirty" in rec and rec["host"]
    assert rec["output_sha256"] == provenance.sha256(mid)
    with h5py.File(mid) as f:
        assert json.loads(f.attrs["provenance"])["rule"] == "make_mid"


def test_audit_passes_then_names_the_tampered_file(chain, capsys):
    raw, mid, final = chain
    assert cli.main(["audit", str(final)]) == 0
    assert "3 files" in capsys.readouterr().out
    raw.write_text("raw data, edited")
    assert cli.main(["audit", str(final)]) == 1
    err = capsys.readouterr().err
    assert str(raw) in err and str(mid) in err
    with pytest.raises(provenance.AuditError, match="raw.txt"):
        provenance.audit([final])


def test_audit_detects_a_changed_output(chain):
    _, mid, final = chain
    with h5py.File(mid, "a") as f:
        f["x"][0] = 99
    with pytest.raises(provenance.AuditError, match="mid.h5"):
        provenance.audit([final])


def test_graph_prints_the_chain(chain, capsys):
    raw, mid, final = chain
    assert cli.main(["audit", "--graph", str(final)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(str(final)) and "make_final" in lines[0]
    assert lines[1].strip().startswith(str(mid)) and "make_mid" in lines[1]
    assert lines[2].strip().startswith(str(raw)) and "fetch_dataset" in lines[2]


def test_failed_step_writes_no_record(tmp_path):
    out = tmp_path / "out.txt"
    smk = fake_smk(tmp_path, "boom", {}, [str(out)], "boom")
    with pytest.raises(ValueError), provenance.step(smk):
        out.write_text("half")
        raise ValueError("bad input")
    assert not provenance.sidecar(out).exists()
    assert "bad input" in (tmp_path / "boom.log").read_text()


def test_folder_checksum_changes_with_content(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.txt").write_text("1")
    before = provenance.sha256(d)
    (d / ".snakemake_timestamp").write_text("")
    assert provenance.sha256(d) == before
    (d / "a.txt").write_text("2")
    assert provenance.sha256(d) != before


def test_audit_resolves_relative_records_from_elsewhere(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "res").mkdir(parents=True)
    monkeypatch.chdir(run)
    with provenance.step(fake_smk(tmp_path, "fetch_dataset", {}, ["res/raw.txt"], "raw")):
        Path("res/raw.txt").write_text("raw")
    with provenance.step(fake_smk(tmp_path, "copy", {"raw": "res/raw.txt"}, ["res/out.txt"], "copy")):
        Path("res/out.txt").write_text("out")
    monkeypatch.chdir(tmp_path)
    assert len(provenance.audit([run / "res/out.txt"])) == 2
    (run / "res/raw.txt").write_text("edited")
    with pytest.raises(provenance.AuditError, match="raw.txt"):
        provenance.audit([run / "res/out.txt"])


def test_a_step_that_never_uses_torch_does_not_import_it(tmp_path):
    """Importing torch costs seconds per job; table and figure steps must not pay it (measured ~3 s here)."""
    code = (
        "import sys, test_provenance as t\n"
        "from pathlib import Path\n"
        "from tdann import provenance\n"
        f"out = Path({str(tmp_path / 'out.txt')!r})\n"
        f"with provenance.step(t.fake_smk(Path({str(tmp_path)!r}), 'table', {{}}, [str(out)], 'table'), "
        "seeds={'seed': 1}):\n"
        "    out.write_text('x')\n"
        "assert 'torch' not in sys.modules, 'step() imported torch'\n"
        "assert provenance.sidecar(out).exists()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_readers_of_metrics_steps_do_not_import_torch():
    """Metrics jobs (one per model) read sheets, stimulus parameters and responses; none of that needs torch."""
    code = ("import sys\nfrom tdann import h5io, metrics, positions, stimuli, tables\n"
            "assert 'torch' not in sys.modules, [m for m in sys.modules if m.startswith('torch')][:3]\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


def test_git_state_is_that_of_the_checkout_being_run(tmp_path, monkeypatch):
    """A dirty clone elsewhere recorded the package folder's state (git_dirty: false) before."""
    repo = tmp_path / "clone"
    repo.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["init", "-q"], ["add", "f.txt"], ["commit", "-qm", "x"]):
        if cmd[0] == "add":
            (repo / "f.txt").write_text("1")
        subprocess.run(["git", *cmd], cwd=repo, check=True, env=env)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    monkeypatch.chdir(repo)
    clean = provenance.environment()
    assert clean["git_commit"] == head and clean["git_dirty"] is False
    (repo / "f.txt").write_text("2")
    assert provenance.environment()["git_dirty"] is True


def test_audit_refuses_a_file_without_a_record(chain):
    """results.md edited and its sidecar deleted used to pass as "raw data" ("audit ok: 1 files")."""
    _, _, final = chain
    provenance.sidecar(final).unlink()
    final.write_text("a,b\n1,999\n")
    with pytest.raises(provenance.AuditError, match="no provenance record"):
        provenance.audit([final])


def test_an_input_without_a_record_must_be_workflow_source(tmp_path):
    loose = tmp_path / "numbers.csv"
    loose.write_text("1,2\n")
    out = tmp_path / "out.csv"
    with provenance.step(fake_smk(tmp_path, "table", {"src": str(loose)}, [str(out)], "t")):
        out.write_text("3\n")
    with pytest.raises(provenance.AuditError, match="numbers.csv: input of .* not workflow source"):
        provenance.audit([out])
    checkout = tmp_path / "checkout"  # a library module of a workflow checkout is a legitimate record-less input
    (checkout / "workflow/tdann").mkdir(parents=True)
    (checkout / "Snakefile").write_text("")
    code = checkout / "workflow/tdann/figures.py"
    code.write_text("x = 1\n")
    out2 = tmp_path / "out2.csv"
    with provenance.step(fake_smk(tmp_path, "fig", {"lib": str(code)}, [str(out2)], "f")):
        out2.write_text("4\n")
    assert str(code) in provenance.audit([out2])
    assert "[workflow source]" in provenance.graph([out2])


def test_a_file_edited_with_its_own_record_is_caught_where_it_was_used(chain):
    """Editing a table and rewriting its record to match passed before; the figure made from it knows better."""
    _, mid, final = chain
    with h5py.File(mid, "a") as f:
        f["x"][0] = 99
    rec = json.loads(provenance.sidecar(mid).read_text())
    rec["output_sha256"] = provenance.sha256(mid)
    provenance.sidecar(mid).write_text(json.dumps(rec))
    with pytest.raises(provenance.AuditError, match=f"{mid}: content differs from the file {final} was made from"):
        provenance.audit([mid])  # at the file itself: a downstream record names it
    with pytest.raises(provenance.AuditError, match="mid.h5"):
        provenance.audit([final])


def test_a_rewritten_record_breaks_the_chain(chain):
    """Content untouched, only the record's claims changed (e.g. its params): the consumer's chain hash differs."""
    _, mid, final = chain
    rec = json.loads(provenance.sidecar(mid).read_text())
    rec["params"] = {"n": 1000}
    provenance.sidecar(mid).write_text(json.dumps(rec))
    with pytest.raises(provenance.AuditError, match="record was rewritten after"):
        provenance.audit([final])
    with pytest.raises(provenance.AuditError, match="record was rewritten after"):
        provenance.audit([mid])
    provenance.sidecar(mid).unlink()
    with pytest.raises(provenance.AuditError, match="record is missing"):
        provenance.audit([final])


def test_a_rerun_step_drops_the_stale_record_first(tmp_path):
    out = tmp_path / "out.txt"
    with provenance.step(fake_smk(tmp_path, "make", {}, [str(out)], "m")):
        out.write_text("old")
    # the rerun fails: no record may vouch for whatever is left
    with pytest.raises(ValueError), provenance.step(fake_smk(tmp_path, "make", {}, [str(out)], "m")):
        raise ValueError("boom")
    assert not provenance.sidecar(out).exists()
