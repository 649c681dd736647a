"""Bidirectional screening: for sample units of each screened layer, where they sit on the sheet, their most / least
activating natural inputs (MAI / LAI) and synthesised most / least exciting inputs (MEI / LEI, with how many seeds
beat the natural inputs); activation curves about each unit's baseline, Gini and skewness, the poles' depth and
height in the screened signal beside the post-ReLU control, and the semantic axis between the poles; for clip
models an animation strip of one MEI."""

import textwrap
from pathlib import Path

import h5py
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tdann import figures, positions, screening, stores
from tdann.provenance import step


def show(ax, x, title="", warn=False):
    """x: (3, H, W) or (3, T, H, W) in [0, 1]; a clip shows its middle frame above its space-time slice
    (figures.clip_image). ``warn``: a title in red, framed."""
    ax.imshow(np.clip(figures.clip_image(x), 0, 1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=6, color="firebrick" if warn else "black")
    if warn:
        for spine in ax.spines.values():
            spine.set_edgecolor("firebrick")
            spine.set_linewidth(1.5)


def mei_title(pole, param, value, best_natural, worst_natural, passed, seeds):
    """A synthesised input is a result only if it beats the natural inputs: an MEI below the best natural input
    and an LEI above the worst one failed its optimisation, and say so (with how many seeds passed)."""
    tally = f" ({passed}/{seeds} seeds)"
    if pole == "mei" and value < best_natural:
        return f"MEI {param}: {value:.2f}\n< best natural {best_natural:.2f}{tally}", True
    if pole == "lei" and value > worst_natural:
        return f"LEI {param}: {value:.2f}\n> worst natural {worst_natural:.2f}{tally}", True
    return f"{pole.upper()} {param}: {value:.2f}{tally}", False


def lai_title(c, values, baseline):
    """A least activating input among ties at the floor is one of many: say so."""
    tied = int(np.sum(np.asarray(values) <= values[0]))
    text = f"LAI rank {c + 1}: {values[c]:.2f}"
    if tied > 1 and values[c] <= values[0]:
        return text + f" (1 of >= {tied} tied)"
    return text + f"\nbaseline {baseline:.2f}" if c == 0 else text


def _bar(ax, i, row, key, colour, label=None):
    """One bar with its CI (columns ``key``, ``key_ci_low``, ``key_ci_high``)."""
    mean, lo, hi = row[key], row[f"{key}_ci_low"], row[f"{key}_ci_high"]
    ax.bar([i], [mean], color=colour, width=0.6)
    if np.isfinite(lo) and np.isfinite(hi):
        ax.errorbar([i], [mean], yerr=[[max(mean - lo, 0)], [max(hi - mean, 0)]], color="k", capsize=3)
    if label:
        ax.text(i, mean + 0.06, label, ha="center", fontsize=6)


def versus_text(versus, layer, measure, label):
    """The trained - untrained paired difference of one measure, as a line of text."""
    r = versus[(versus["layer"] == layer) & (versus["measure"] == measure)].iloc[0]
    verdict = "differs" if r["differs"] else "n.s."
    return (f"{label}: trained {r['model_mean']:.2f} vs untrained {r['untrained_mean']:.2f}, diff "
            f"{r['diff_mean']:+.2f} [{r['diff_ci_low']:+.2f}, {r['diff_ci_high']:+.2f}], {r['n_units']} units "
            f"({verdict})")


def pole_panel(ax, poles, versus, layer, model, signals):
    """Share of units whose low pole lies significantly below baseline: the screened signal, its post-ReLU
    control, and the untrained network in the screened signal."""
    bars = [(model, s, SIGNAL_NAMES.get(s, s)) for s in signals]
    bars.append((poles["model"][poles["model"].str.startswith("untrained")].iloc[0], signals[0],
                 f"untrained,\n{SIGNAL_NAMES.get(signals[0], signals[0])}"))
    for i, (m, signal, _) in enumerate(bars):
        row = poles[(poles["model"] == m) & (poles["signal"] == signal) & (poles["layer"] == layer)].iloc[0]
        key = "frac_low_below"
        row = row.rename({"frac_low_below_ci_low": f"{key}_ci_low", "frac_low_below_ci_high": f"{key}_ci_high"})
        _bar(ax, i, row, key, ("C0", "0.6", "0.85")[i % 3], f"{row['n_low_below']}/{row['n_units']}")
    ax.set_xticks(range(len(bars)), [b[2] for b in bars], fontsize=6)
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("units with low pole\nbelow baseline", fontsize=6)
    ax.set_title(f"{layer}: low pole below baseline (bootstrap over inputs; exact 95% CI)\n"
                 + versus_text(versus, layer, "depth_ratio", "depth / height"), fontsize=6)


def axis_panel(ax, poles, versus, layer, model, signal):
    """Held-out AUC of the semantic axis (inputs from other sources than the fit): the unit's own axis, another
    unit's axis, and the untrained network's own axis."""
    rows = poles[(poles["signal"] == signal) & (poles["layer"] == layer)]
    trained = rows[rows["model"] == model].iloc[0]
    untrained = rows[rows["model"].str.startswith("untrained")].iloc[0]
    for i, (row, key, colour) in enumerate(((trained, "axis_auc", "C2"), (trained, "axis_auc_other", "0.6"),
                                            (untrained, "axis_auc", "0.85"))):
        if f"{key}_mean" in row and np.isfinite(row[f"{key}_mean"]):
            _bar(ax, i, row.rename({f"{key}_mean": key}), key, colour, f"n={int(row['n_axis_units'])}")
    ax.axhline(0.5, color="C3", ls="--", lw=0.8)
    ax.set_xticks([0, 1, 2], ["own axis", "other unit's\naxis", "untrained,\nown axis"], fontsize=6)
    ax.set_ylim(0, 1.3)
    ax.set_ylabel("held-out AUC\n(MAI vs LAI)", fontsize=6)

    verdict = {True: "unit-specific", False: "not unit-specific"}.get(trained.get("axis_specific"),
                                                                       "too few held-out pairs")
    ax.set_title(f"semantic axis (penultimate features, held-out sources): {verdict}; 0.5 = none\n"
                 + versus_text(versus, layer, "axis_auc", "own-axis AUC"), fontsize=6)


SIGNAL_NAMES = {"preact": "pre-activation", "output": "post-ReLU"}


with step(snakemake, config_keys=["figures", "screening"]):
    store = Path(snakemake.input.store)
    poles, checks = pd.read_csv(snakemake.input.poles), pd.read_csv(snakemake.input.checks)
    versus = pd.read_csv(snakemake.input.untrained)
    sheets = positions.load_sheets(Path(snakemake.input.sheet))
    with h5py.File(snakemake.input.screen, "r") as f:
        signals = list(f.attrs["signals"])
    sources = stores.store_sources(store)
    layers = [h5py.File(p, "r") for p in snakemake.input.synthesis]
    n_units = max(len(f["units"]) for f in layers)
    params = [p for p in ("pixel", "fourier") if p in layers[0]]
    cols = 1 + 2 + 2 + 2 * len(params)
    is_clip = layers[0]["pixel/mei/input"].ndim == 6 if "pixel" in params else False
    extra = 3 if is_clip else 2
    fig = plt.figure(figsize=(1.3 * cols, 1.35 * (len(layers) * n_units + extra * len(layers))))
    gs = fig.add_gridspec(len(layers) * (n_units + extra), cols)
    row = 0
    for f in layers:
        layer = f.attrs["layer"]
        scr = screening.load_screen(Path(snakemake.input.screen), layer)
        unit_row = {int(u): i for i, u in enumerate(scr["units"])}
        pos = f["unit_positions"][()]
        sheet = sheets[layer].positions[scr["units"]]  # every screened unit of the layer, on the sheet
        for j, unit in enumerate(f["units"][()]):
            r = unit_row[int(unit)]
            ax = fig.add_subplot(gs[row, 0])
            ax.scatter(sheet[:, 0], sheet[:, 1], s=1, c="0.8", lw=0)
            ax.scatter(pos[:, 0], pos[:, 1], s=8, c="0.4")
            ax.scatter(pos[j, 0], pos[j, 1], s=20, c="r")
            ax.set_title(f"{layer} unit {unit}", fontsize=6)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            # the top two from different photos / videos (crops of one photo would show one thing twice)
            top = screening.distinct_sources(scr["top_idx"][r], sources, 2)
            bottom = screening.distinct_sources(scr["bottom_idx"][r], sources, 2)
            mai = stores.store_items(store, scr["top_idx"][r][top])
            lai = stores.store_items(store, scr["bottom_idx"][r][bottom])
            for c, rank in enumerate(top):
                show(fig.add_subplot(gs[row, 1 + c]), mai[c], f"MAI rank {rank + 1}: {scr['top_val'][r][rank]:.2f}")
            for c, rank in enumerate(bottom):
                show(fig.add_subplot(gs[row, 3 + c]), lai[c], lai_title(rank, scr["bottom_val"][r], scr["q50"][r]))
            best, worst = float(np.max(scr["top_val"][r])), float(np.min(scr["bottom_val"][r]))
            for k, param in enumerate(params):
                for m, pole in enumerate(("mei", "lei")):
                    g = f[f"{param}/{pole}"]
                    mine = checks[(checks["layer"] == layer) & (checks["unit"] == int(unit))
                                  & (checks["param"] == param) & (checks["pole"] == pole)]
                    title, warn = mei_title(pole, param, float(g["activation"][j, 0]), best, worst,
                                            int(mine["passes"].sum()), len(mine))
                    show(fig.add_subplot(gs[row, 5 + 2 * k + m]), g["input"][j, 0], title, warn)
            row += 1
        ax = fig.add_subplot(gs[row, : cols // 2])
        for unit in f["units"][()]:
            r = unit_row[int(unit)]
            curve = np.concatenate([scr["top_val"][r], scr["bottom_val"][r][::-1]])
            ax.plot(curve, "o-", ms=2, lw=0.8)
            ax.axhline(scr["q50"][r], lw=0.5, ls=":", color=ax.lines[-1].get_color())
        ax.set_xlabel("rank: top-k then bottom-k", fontsize=6)
        ax.set_ylabel(f"response ({SIGNAL_NAMES.get(signals[0], signals[0])})", fontsize=6)
        ax.set_title(f"{layer}: activation curves (dotted: baseline, the median over the store)", fontsize=7)
        half = cols // 2 + (cols - cols // 2) // 2
        for sl, key, label in ((slice(cols // 2, half), "gini", "Gini of responses (1 = one input only)"),
                               (slice(half, cols), "skew", "skewness of responses")):
            ax = fig.add_subplot(gs[row, sl])
            ax.hist(scr[key], 20, color="0.4")
            ax.set_xlabel(label, fontsize=6)
            ax.set_ylabel("units", fontsize=6)
            ax.set_title(f"{layer}: {len(scr['units'])} screened units", fontsize=7)
        row += 1
        pole_panel(fig.add_subplot(gs[row, : cols // 2]), poles, versus, layer, snakemake.params.model, signals)
        axis_panel(fig.add_subplot(gs[row, cols // 2:]), poles, versus, layer, snakemake.params.model, signals[0])
        row += 1
        if is_clip:
            mei = f["pixel/mei/input"][0, 0]
            t = mei.shape[1]
            for c in range(min(cols, t)):
                show(fig.add_subplot(gs[row, c]), mei[:, c], f"MEI of unit {f['units'][0]}, frame {c}")
            row += 1
    stream, model = snakemake.wildcards.stream, snakemake.params.model
    note = figures.learning_note(snakemake.input.learning, stream, model)
    clips = "; clips: middle frame above the x-t slice of the centre row, time down" if is_clip else ""
    title = (f"{stream} stream, model {model}{note}: bidirectional screening of the "
             f"{SIGNAL_NAMES.get(signals[0], signals[0])} (red: synthesis failed to beat the natural inputs; "
             f"MAI / LAI: the top two from different sources{clips})")
    fig.suptitle(textwrap.fill(title, width=int(12 * 1.3 * cols)),
                 fontsize=10, color="firebrick" if note else "black")
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    figures.save(fig, [snakemake.output.png, snakemake.output.pdf], snakemake.params.figures["dpi"])
