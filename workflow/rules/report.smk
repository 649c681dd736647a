# Report pages: every result table as an HTML page the Snakemake report shows inline (a CSV it shows only as a
# download). Each page carries its description (workflow/report/table_<name>.rst), every row, and the CSV itself.
# Which tables have pages: TABLE_PAGES and table_pages() in common.smk.


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
