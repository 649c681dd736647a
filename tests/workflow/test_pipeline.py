"""The whole workflow on a tiny config, end to end, in a copy of the repository; then the rebuild promises:
nothing to do after a run, touching a figure script reruns only figures, changing alpha reruns training; and the
provenance audit along a figure's chain."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pandas as pd
import pytest
import yaml
from snakemake.utils import update_config

from checkout import copy_checkout
from tdann import provenance
from tdann.h5io import undescribed

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
pytestmark = [pytest.mark.workflow, pytest.mark.slow]


def tiny_config(results: str) -> dict:
    """The embedded default with the tiny overlay (tests/tiny.yaml, merged as Snakemake merges config files), plus
    the settings sweep and the objectives comparison on two ventral variants."""
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    update_config(cfg, yaml.safe_load((ROOT / "tests/tiny.yaml").read_text()))
    cfg["results"] = results
    cfg["settings_sweep"] = {"enabled": True, "alphas": [0.0, 0.25], "seeds": [0],
                             "variants": {"ventral": {"keep": {"stem": "keep"},
                                                      "topo": {"optim": {"sl_kind": "topo", "topo_factor": 2.0},
                                                               "sheet_layout": "channel_grid"}}},
                             "objectives": {"ventral": ["keep", "topo"]}}
    return cfg


def run(cwd: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([str(BIN / "snakemake"), "--cores", "2", "--configfile", "tiny.yaml", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env)


def planned_rules(out: subprocess.CompletedProcess) -> set[str]:
    """Rule names in the job-stats table of a dry run."""
    rules, in_table = set(), False
    for line in (out.stdout + out.stderr).splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
            continue
        if in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] not in ("total", "all"):
                rules.add(parts[0])
        elif in_table and parts and not set("".join(parts)) <= set("-"):
            in_table = False
    return rules


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("pipeline")
    copy_checkout(work)
    (work / "tiny.yaml").write_text(yaml.safe_dump(tiny_config("results")))
    t0 = time.time()
    out = run(work)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    return work, time.time() - t0


def test_all_figures_and_tables(tiny_run):
    work, _ = tiny_run
    res = work / "results"
    for name in ("metrics.csv", "tradeoff.csv", "results.csv", "results.md", "emergence.csv", "comparisons.csv",
                 "pinwheels.csv", "twostream.csv", "twostream_summary.csv", "twostream_pairs.csv",
                 "objectives.csv", "ventral_screening_units.csv", "dorsal_screening_poles.csv",
                 "ventral_screening_vs_untrained.csv", "dorsal_synthesis_checks.csv"):
        assert (res / "tables" / name).stat().st_size > 0, name
    poles = pd.read_csv(res / "tables/ventral_screening_poles.csv")
    assert set(poles["signal"]) == {"preact", "output"} and poles["model"].str.startswith("untrained").any()
    assert set(pd.read_csv(res / "tables/objectives.csv")["objective"]) == {"SL_Rel", "TopoLoss"}
    events = pd.read_csv(res / "spiking/event_files.csv")
    assert set(events["file"]) == {"disks (as written)"} and len(events) == 3
    compared = pd.read_csv(res / "tables/comparisons.csv")
    assert {"task_loss", "sl_mean", "dir_mean_dsi", "dir_mean_axial"} <= set(compared["quantity"])
    assert "## Pinwheel density" in (res / "tables/results.md").read_text()
    pngs = sorted(p.name for p in (res / "figures").glob("*.png"))
    assert len(pngs) >= 11, pngs
    for png in pngs:
        assert (res / "figures" / png.replace(".png", ".pdf")).exists()
    metrics = pd.read_csv(res / "tables/metrics.csv")
    assert {"ventral", "dorsal"} <= set(metrics["stream"])
    assert not list((res / "runs").rglob("*.pt"))  # finished runs' checkpoints are removed (run.keep_checkpoints)
    assert metrics["value"].notna().mean() > 0.8


def test_the_report_shows_every_table_as_a_page_and_logs_carry_numbers(tiny_run):
    work, _ = tiny_run
    res = work / "results"
    pages = {p.stem for p in (res / "tables/html").glob("*.html")}
    assert {"learning", "tradeoff", "results", "comparisons", "pinwheels", "anchors", "ventral_screening_poles",
            "dorsal_synthesis_checks", "twostream_summary", "twostream_pairs", "objectives", "settings_sweep"} <= pages
    learning = pd.read_csv(res / "tables/learning.csv")
    page = (res / "tables/html/learning.html").read_text()
    assert page.count("<tr") == len(learning) + 1 and "Did each network learn?" in page
    assert "Did the networks learn?" in (res / "tables/summary.html").read_text()
    out = run(work, "--report", "results/report.html")
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    report = (res / "report.html").read_text()
    assert "learning.html" in report and "summary.html" in report and "Undefined substitution" not in report
    swap = next((res / "logs/swapopt").glob("*.log")).read_text()
    assert "spatial loss" in swap and "swaps accepted" in swap and "wrote " in swap
    train = next((res / "logs/train").glob("*.log")).read_text()
    assert "held-out:" in train and "step 3/3" in train


def test_every_hdf5_dataset_is_described(tiny_run):
    work, _ = tiny_run
    files = list((work / "results").rglob("*.h5"))
    assert len(files) > 20
    for f in files:
        assert undescribed(str(f)) == [], f


def test_nothing_to_do_after_a_run(tiny_run):
    work, _ = tiny_run
    out = run(work, "-n")
    assert out.returncode == 0
    assert planned_rules(out) == set(), (out.stdout + out.stderr)[-3000:]


def test_touching_a_figure_script_reruns_only_that_figure(tiny_run):
    work, _ = tiny_run
    script = work / "workflow/scripts/fig_tradeoff.py"
    script.write_text(script.read_text() + "\n# edited\n")
    out = run(work, "-n")
    assert planned_rules(out) == {"fig_tradeoff"}, (out.stdout + out.stderr)[-3000:]
    t0 = time.time()
    done = run(work)
    assert done.returncode == 0
    assert run(work, "-n").returncode == 0 and planned_rules(run(work, "-n")) == set()
    print(f"rebuild after touching a figure script: {time.time() - t0:.1f} s")


def test_editing_the_figures_library_reruns_figures_only(tiny_run):
    work, _ = tiny_run
    lib = work / "workflow/tdann/figures.py"
    lib.write_text(lib.read_text() + "\n# edited\n")
    planned = planned_rules(run(work, "-n"))
    # figures, and the report pages of the tables two figure rules write (two-stream, objectives)
    assert planned and all(r.startswith("fig_") or r == "table_page" for r in planned), planned
    assert run(work).returncode == 0


def test_changing_alpha_plans_training(tiny_run):
    work, _ = tiny_run
    cfg = yaml.safe_load((work / "tiny.yaml").read_text())
    cfg["sweep"]["alphas"] = [0.0, 0.25, 2.5]
    (work / "tiny2.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "1", "--configfile", "tiny2.yaml"], cwd=work,
                         capture_output=True, text=True)
    planned = planned_rules(out)
    assert "train" in planned and "pretrain" not in planned and "swapopt" not in planned, planned


def _dry_run_with(work: Path, edit) -> set[str]:
    cfg = yaml.safe_load((work / "tiny.yaml").read_text())
    edit(cfg)
    (work / "edited.yaml").write_text(yaml.safe_dump(cfg))
    out = subprocess.run([str(BIN / "snakemake"), "-n", "--cores", "1", "--configfile", "edited.yaml"], cwd=work,
                         capture_output=True, text=True)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return planned_rules(out)


UPSTREAM = {"init_sheet", "init_weights", "pretrain", "swapopt_responses", "swapopt", "swapopt_sheet", "image_store",
            "gather_clips", "decode_shard", "fetch_dataset"}


@pytest.mark.parametrize("edit, must, must_not", [
    # stage 3's schedule: stage 3 and what reads it, nothing upstream (was 78 jobs incl. the sheet and SwapOpt)
    (lambda c: c["streams"]["ventral"]["train"].update(lr_per_256=0.2), {"train", "responses_ventral", "metrics"},
     UPSTREAM | {"responses_dorsal", "sweep_sheet", "sweep_init"}),  # (the settings sweep inherits the schedule: retrains)
    # stage 1's schedule: pretraining and SwapOpt rerun, the sheet and the untrained controls do not
    (lambda c: c["streams"]["dorsal"]["pretrain"].update(steps=4), {"pretrain", "swapopt", "train"},
     {"init_sheet", "init_weights", "image_store", "gather_clips"}),
    # an analysis setting: metrics and below only
    (lambda c: c["analysis"].update(n_shuffles=3), {"metrics", "metrics_table", "fig_tradeoff"},
     UPSTREAM | {"train", "responses_ventral", "responses_dorsal"}),
    # a layer's hypercolumn width (read by the metrics only)
    (lambda c: c["streams"]["ventral"]["layers"]["layer2.0"].update(hypercolumn_mm=12.0), {"metrics"},
     UPSTREAM | {"train", "responses_ventral"}),
    # a figure setting: figures only
    (lambda c: c["figures"].update(dpi=100), {"fig_tradeoff"}, UPSTREAM | {"train", "metrics", "metrics_table"}),
])
def test_an_edit_reruns_what_reads_it_and_nothing_upstream(tiny_run, edit, must, must_not):
    work, _ = tiny_run
    planned = _dry_run_with(work, edit)
    assert must <= planned, sorted(must - planned)
    assert not must_not & planned, sorted(must_not & planned)


def test_audit_refuses_an_edited_result_whose_record_was_deleted(tiny_run):
    work, _ = tiny_run
    md = work / "results/tables/results.md"
    car = provenance.sidecar(md)
    backup, record = md.read_bytes(), car.read_bytes()
    md.write_text(md.read_text().replace("0.", "0.9", 1))
    car.unlink()
    done = subprocess.run([str(BIN / "tdann"), "audit", str(md)], capture_output=True, text=True)
    assert done.returncode == 1 and "no provenance record" in done.stderr
    md.write_bytes(backup)
    car.write_bytes(record)
    assert subprocess.run([str(BIN / "tdann"), "audit", str(md)], capture_output=True).returncode == 0


def test_the_settings_sweep_table_comes_out_of_the_run(tiny_run):
    work, _ = tiny_run
    table = pd.read_csv(work / "results/tables/settings_sweep.csv")
    # config files merge into the default's, so its variants run too (one seed each); this one is the tiny config's
    row = table[(table["stream"] == "ventral") & (table["variant"] == "keep")].iloc[0]
    assert row["layer"] == "layer2.0" and row["grid"] == 16  # 32 px through the resolution-keeping stem
    assert row["train_seconds"] > 0 and row["n_seeds"] == 1 and not row["emerged"]  # one seed never suffices
    assert {"alpha0", "shuffled", "untrained", "spread"} <= set(table.columns)
    assert "keep" in (work / "results/tables/settings_sweep.md").read_text()


def test_audit_of_a_figure_reaches_raw_data_and_catches_tampering(tiny_run):
    work, _ = tiny_run
    fig = work / "results/figures/alpha_tradeoff.png"
    checked = provenance.audit([fig])
    assert any("weights.pt" in c for c in checked) and any("data/media" in c for c in checked)
    rec = json.loads(provenance.sidecar(fig).read_text())
    assert rec["rule"] == "fig_tradeoff" and rec["output_sha256"] == provenance.sha256(fig)
    table = work / "results/tables/tradeoff.csv"  # the input of the figure
    backup = table.read_bytes()
    table.write_bytes(backup.replace(b"0.", b"9.", 1))
    with pytest.raises(provenance.AuditError, match="tradeoff.csv"):
        provenance.audit([fig])
    car = provenance.sidecar(table)  # edit the table and forge its own record to match: the figure's record knows
    record = car.read_bytes()
    forged = json.loads(record)
    forged["output_sha256"] = provenance.sha256(table)
    car.write_text(json.dumps(forged))
    with pytest.raises(provenance.AuditError, match="tradeoff.csv: content differs from the file"):
        provenance.audit([table])
    table.write_bytes(backup)
    car.write_bytes(record)
    assert provenance.audit([table])
    with h5py.File(next((work / "results/metrics").rglob("*.h5")), "r") as f:
        assert json.loads(f.attrs["provenance"])["rule"] == "metrics"
