"""Map metrics of one model on its cortical sheet, for the layers in params.layers and every evaluation stimulus set."""

from pathlib import Path

from tdann import metrics, positions, stimuli
from tdann.h5io import load_responses
from tdann.provenance import log, step

w, p = snakemake.wildcards, snakemake.params
with step(snakemake, config_keys=["analysis"], seeds={"seed": 0}):
    sheets = positions.load_sheets(Path(snakemake.input.sheet))
    sheets = {layer: sheets[layer] for layer in p.layers}
    responses, params = {}, {}
    for stimset, rpath, spath in zip(p.stimsets, snakemake.input.responses, snakemake.input.stimuli):
        params[stimset] = stimuli.load_params(Path(spath))
        responses[stimset] = {layer: load_responses(Path(rpath), layer) for layer in sheets}
    cfg = dict(p.analysis)
    cfg["probe_layer_now"] = metrics.probe_layer_of(cfg, w.stream)
    if snakemake.input.macaque:  # the Ringach et al. (2002) raw file, when configured as a dataset
        cfg["macaque_cv"] = metrics.load_ringach(Path(snakemake.input.macaque[0]))
    table, arrays = metrics.measure_model(sheets, responses, params, cfg, seed=0,
                                          hypercolumns=dict(p.hypercolumns))
    table.insert(0, "sheet", p.sheet_name)
    table.insert(0, "model", w.model)
    table.insert(0, "stream", w.stream)
    table.to_csv(snakemake.output.table, index=False)
    metrics.save(Path(snakemake.output.maps), arrays, table,
                 attrs={"stream": w.stream, "model": w.model, "sheet": p.sheet_name})
    log.info("%s %s: %d metric rows over layers %s and stimulus sets %s", w.stream, w.model, len(table),
             list(sheets), list(p.stimsets))
