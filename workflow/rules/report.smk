# Report pages: every result table as an HTML page the Snakemake report shows inline (a CSV it shows only as a
# download). Each page carries its description (workflow/report/table_<name>.rst), every row, and the CSV itself.
import jinja2

# name -> (title, report category, subcategory); which of them a run builds: table_pages().
TABLE_PAGES = {
    "learning": ("Did each network learn?", "both streams", "learning"),
    "tradeoff": ("The alpha trade-off, per model", "both streams", "alpha trade-off"),
    "results": (
        "Emergence tests: alpha > 0 against each control",
        "both streams",
        "results table",
    ),
    "comparisons": (
        "alpha > 0 against alpha = 0, paired by seed",
        "both streams",
        "results table",
    ),
    "pinwheels": ("Pinwheel densities", "both streams", "results table"),
    "anchors": ("V1 tuning against macaque V1", "both streams", "results table"),
    "twostream_summary": (
        "Two-stream species presets",
        "extras",
        "two-stream species model",
    ),
    "twostream_pairs": (
        "Two-stream presets compared",
        "extras",
        "two-stream species model",
    ),
    "settings_sweep": ("Settings sweep", "both streams", "settings sweep"),
    "objectives": (
        "Two topographic objectives",
        "both streams",
        "topographic objectives",
    ),
    "published": ("The published TDANN networks", "published TDANN networks", "tables"),
}
for _s in STREAMS:
    TABLE_PAGES[f"{_s}_screening_poles"] = (
        f"{_s}: signed poles per layer",
        _s,
        "screening",
    )
    TABLE_PAGES[f"{_s}_screening_vs_untrained"] = (
        f"{_s}: screening vs untrained",
        _s,
        "screening",
    )
    TABLE_PAGES[f"{_s}_synthesis_checks"] = (f"{_s}: synthesis checks", _s, "screening")


def table_pages():
    """The HTML pages this config's run builds (a table's page exists where its table does)."""
    if PUBLISHED["enabled"] and PUBLISHED["only"]:
        names = ["published"]
    else:
        names = [
            "learning",
            "tradeoff",
            "results",
            "comparisons",
            "pinwheels",
            "anchors",
        ]
        names += [
            f"{s}_{t}"
            for s in STREAMS
            for t in ("screening_poles", "screening_vs_untrained", "synthesis_checks")
        ]
        names += ["twostream_summary", "twostream_pairs"] * config["twostream"][
            "enabled"
        ]
        names += ["settings_sweep"] * config["settings_sweep"]["enabled"]
        names += ["published"] * PUBLISHED["enabled"]
        ss = config["settings_sweep"]
        if (ss["enabled"] or ss["objectives_enabled"]) and objective_variants():
            names.append("objectives")
    return [f"{R}/tables/html/{n}.html" for n in names]


def table_description(name):
    """A table's description: its caption file rendered with this run's config, as the report renders captions."""
    stem = name
    for s in STREAMS:
        stem = stem.removeprefix(f"{s}_")
    path = os.path.join(CHECKOUT, "workflow", "report", f"table_{stem}.rst")
    if not os.path.exists(path):
        raise WorkflowError(f"report: table {name!r} has no description {path}")
    text = jinja2.Template(open(path).read()).render(
        snakemake={"config": config, "wildcards": {"stream": name.split("_")[0]}}
    )
    return text


rule table_page:
    input:
        table=f"{R}/tables/{{table}}.csv",
        lib=lib("report"),
    output:
        html=report(
            f"{R}/tables/html/{{table}}.html",
            caption="../report/table_page.rst",
            category=lambda w: TABLE_PAGES[w.table][1],
            subcategory=lambda w: TABLE_PAGES[w.table][2],
            labels=lambda w: {"table": w.table},
        ),
    log:
        log_path("table_page", "{table}"),
    benchmark:
        bench_path("table_page", "{table}")
    wildcard_constraints:
        table="|".join(TABLE_PAGES),
    conda:
        CONDA_ENV
    params:
        title=lambda w: TABLE_PAGES[w.table][0],
        description=lambda w: table_description(w.table),
    script:
        "../scripts/table_page.py"
