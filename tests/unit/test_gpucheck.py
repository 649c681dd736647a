"""The prepared GPU check (tdann.gpucheck) runs on a CPU at tiny shapes and reports every number it promises."""

import json
import math
import subprocess
import sys

from tdann import gpucheck


def test_the_tiny_check_reports_throughput_ratios_and_a_projection(tmp_path):
    r = gpucheck.run("cpu", tiny=True, steps=1)
    assert r["ventral"]["images_per_s"] > 0 and r["dorsal"]["clips_per_s"] > 0
    assert 0.5 < r["sl_ratio_ventral"] < 20 and 0.5 < r["sl_ratio_dorsal"] < 20
    assert r["swapopt"]["attempts"] == 8 * 50 and r["swapopt"]["attempts_per_s"] > 0
    p = r["projection"]
    assert all(math.isfinite(v) and v > 0 for v in p.values())
    assert math.isclose(p["total_gpu_h"], 36 * p["ventral_h_per_training"] + 36 * p["dorsal_h_per_training"]
                        + 16 * p["swapopt_h_per_layer"])
    text = gpucheck.summary(r)
    assert "images/s" in text and "clips/s" in text and "attempts/s" in text and "CPU-h" in text and "tiny" in text


def test_the_command_line_needs_only_torch_numpy_and_h5py(tmp_path):
    """Run as on a bare GPU machine: importing pandas, scipy, yaml, matplotlib or snakemake is refused."""
    blocker = ("import sys\n"
               "for name in ('pandas', 'scipy', 'yaml', 'matplotlib', 'snakemake', 'decord'):\n"
               "    sys.modules[name] = None  # import raises ImportError, find_spec says absent\n"
               "from tdann import gpucheck\nsys.exit(gpucheck.main(sys.argv[1:]))\n")
    out = tmp_path / "r.json"
    done = subprocess.run([sys.executable, "-c", blocker, "--tiny", "--steps", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "projected on one such device" in done.stdout
    assert json.loads(out.read_text())["amp"] == "none"
