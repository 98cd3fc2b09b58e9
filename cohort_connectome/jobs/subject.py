"""Jobs of the per-run rules after extraction (workflow/rules/subject.smk):
clean, combine a subject's runs, estimate the connectomes.

Each job reads its inputs, calls the numerics (`confounds`, `signal`,
`connectivity`, `qc`), writes its outputs and, with
``cohort.on_bad_input: exclude``, the placeholders of an excluded run
(`runtime.excluded_on_bad_input`).  The subject's connectome figures are
`figures.plot_connectomes`.
"""

import math

import numpy as np

from .. import io
from ..cohort import repetition_time, sidecar_repetition_time
from ..confounds import run_confounds_and_censoring
from ..connectivity import estimate_run_connectivity
from ..errors import InputError
from ..qc import (QC_COLUMNS, combine_run_info, excluded_info, mean_framewise_displacement,
                  volume_qc)
from ..signal import censoring_exclusion, clean_run_signals, missing_regions
from .runtime import excluded_on_bad_input, exclusion_reason, log


def clean_timeseries(raw_path, sidecar_path, confounds_path, output_path, info_path,
                     qc_path, clean, t_r=None, subject=None, bold_sidecar=None,
                     on_bad_input="fail", atlas=None, coverage_path=None, min_coverage=0.0):
    """Censor and clean region signals as nilearn (``load_confounds`` volumes,
    then ``signal.clean``: detrend, filter, confounds, standardize) and write
    them with a JSON sidecar of what was done and a per-volume QC table.

    A run whose censoring keeps no volume, or less than ``clean["min_seconds"]``,
    is excluded rather than failed: its time series has a header and no row,
    and the sidecar says why (``Excluded``); the group rules leave it out and
    list it in ``results/group/atlas-<name>_exclusions.tsv``.

    A region without data in the run (its raw column n/a in every volume,
    listed in the raw sidecar's ``MissingRegions``) is left out of the
    cleaning and stays n/a in the cleaned series (`signal.clean_run_signals`);
    the cleaned sidecar carries ``MissingRegions`` on (written when the raw
    sidecar has the key or a region is missing).  A run with fewer than 2
    regions with data cannot give a connectome: it is bad input (excluded,
    or failed with ``on_bad_input="fail"``), e.g. "no region of atlas msdl
    has data in this run".

    Parameters
    ----------
    clean : dict
        The ``clean`` config section: nilearn's names, plus ``strategy``,
        ``confounds`` (explicit columns), ``fd_threshold``, ``dummy_scans``,
        ``min_segment`` and ``min_seconds``.
    t_r : float or None
        The repetition time from the cohort sheet; else ``clean["t_r"]``; else
        ``RepetitionTime`` of the run's JSON sidecar (``bold_sidecar``); else
        the run header.  A header that disagrees with the value used is
        logged as a warning.
    bold_sidecar : path, optional
        BIDS-style JSON sidecar of the run (``RepetitionTime`` in seconds).
    on_bad_input : {"fail", "exclude"}
        Bad input (confounds, repetition time, a setting the data cannot
        take) fails the job or excludes the run (`excluded_on_bad_input`).
        A run excluded upstream (``Excluded`` in the raw sidecar) is passed
        on as excluded.
    atlas : str, optional
        The atlas name, for messages.
    coverage_path : path, optional
        The run's coverage table (extract_timeseries: ``index``, ``name``,
        ``coverage``).
    min_coverage : float
        ``extraction.min_coverage``: a region with data but covered less is
        set to n/a before cleaning, listed in ``LowCoverageRegions`` and
        ``MissingRegions`` (0: every region with data is kept).
    """
    signals, names = io.read_timeseries(raw_path, subject=subject)
    header = io.read_json(sidecar_path)
    upstream = excluded_info(header)
    if not upstream and coverage_path:
        signals, header = _apply_min_coverage(signals, names, header, coverage_path,
                                              min_coverage, subject, atlas)
    if upstream:
        _write_excluded_clean(names, None, *upstream, confounds_path, clean, output_path,
                              info_path, qc_path,
                              _missing_record("MissingRegions" in header,
                                              header.get("MissingRegions") or []))
        log.warning("run excluded at %s (%s): passed on", *upstream)
        return

    def write_excluded(stage, err):
        _write_excluded_clean(names, len(signals), stage, exclusion_reason(err),
                              confounds_path, clean, output_path, info_path, qc_path,
                              _missing_record("MissingRegions" in header,
                                              _all_nan_columns(signals, names)))

    with excluded_on_bad_input("clean_timeseries", on_bad_input, write_excluded, subject):
        _clean_run(signals, names, header, raw_path, sidecar_path, confounds_path,
                   output_path, info_path, qc_path, clean, t_r, subject, bold_sidecar, atlas)


def _apply_min_coverage(signals, names, header, coverage_path, min_coverage, subject,
                        atlas):
    """Regions covered less than ``min_coverage`` in the run set to n/a.

    Returns the signals (a copy when changed) and the raw sidecar with those
    regions added to ``MissingRegions`` and listed in ``LowCoverageRegions``
    (with ``MinCoverage``).
    """
    table = io.read_table(coverage_path, subject=subject, dtype={"name": str})
    if list(table["name"]) != list(names):
        raise InputError("coverage table regions differ from the time series' columns",
                         path=coverage_path, subject=subject)
    coverage = table["coverage"].to_numpy(dtype=np.float64)
    low = (coverage < float(min_coverage)) & ~np.isnan(signals).all(axis=0) \
        if len(signals) else np.zeros(len(names), dtype=bool)
    header = dict(header, MinCoverage=float(min_coverage),
                  LowCoverageRegions=[names[i] for i in np.flatnonzero(low)])
    if low.any():
        signals = np.array(signals, copy=True)
        signals[:, low] = np.nan
        missing = set(header.get("MissingRegions") or []) | set(header["LowCoverageRegions"])
        header["MissingRegions"] = [n for n in names if n in missing]
        log.warning("%s%d regions covered less than extraction.min_coverage %.3g: n/a (%s)",
                    f"atlas {atlas}: " if atlas else "", int(low.sum()), min_coverage,
                    ", ".join(f"{names[i]} {coverage[i]:.2f}" for i in np.flatnonzero(low)))
    return signals, header


def _write_excluded_clean(names, n_volumes, stage, reason, confounds_path, clean,
                          output_path, info_path, qc_path, missing=None):
    """The outputs of clean_timeseries for an excluded run: no row, no volume
    kept, and a sidecar with the settings and the reason (and ``missing``,
    `_missing_record`)."""
    io.write_timeseries(np.zeros((0, len(names))), names, output_path)
    io.write_numeric_table(volume_qc(n_volumes or 0, None, []), QC_COLUMNS, qc_path)
    io.write_json({**_clean_settings(clean, confounds_path),
                   "RepetitionTime": None, "RepetitionTimeSource": None,
                   "NumberOfVolumes": n_volumes, "NumberOfVolumesKept": 0,
                   "NonFiniteValues": None, "SecondsKept": None,
                   "MeanFramewiseDisplacement": None, "Confounds": [],
                   "Excluded": reason, "ExcludedStage": stage, **(missing or {})}, info_path)


def _all_nan_columns(signals, names):
    """Names of the columns n/a in every volume (none for 0 volumes)."""
    if len(signals) == 0:
        return []
    return [names[i] for i in np.flatnonzero(np.isnan(signals).all(axis=0))]


def _missing_record(upstream_has_key, missing):
    """``{"MissingRegions": missing}`` for a sidecar when the upstream
    sidecar has the key or a region is missing, else ``{}``: the key is
    carried on as extraction writes it, never added to the sidecars of a
    workflow without missing regions (their bytes stay as they were)."""
    if upstream_has_key or missing:
        return {"MissingRegions": list(missing)}
    return {}


def _missing_in_run(signals, names, header, raw_path, sidecar_path, subject, atlas):
    """The run's regions without data (`signal.missing_regions`), checked
    against the raw sidecar's ``MissingRegions``; at least 2 regions must
    have data."""
    try:
        missing = missing_regions(signals)
    except ValueError as err:
        raise InputError(str(err), path=raw_path, subject=subject) from None
    found = [names[i] for i in np.flatnonzero(missing)]
    listed = header.get("MissingRegions")
    if listed is not None and set(listed) != set(found):
        raise InputError(f"MissingRegions ({', '.join(listed) or 'none'}) differ from the "
                         f"regions n/a in the time series ({', '.join(found) or 'none'})",
                         path=sidecar_path, subject=subject)
    _check_regions_with_data(len(names) - len(found), len(names), atlas, "in this run",
                             path=raw_path, subject=subject)
    return found


def _check_regions_with_data(n_present, n_regions, atlas, where, path=None, subject=None):
    """InputError unless at least 2 of the atlas' regions have data.

    Parameters
    ----------
    n_present, n_regions : int
        Regions with data, regions of the atlas.
    atlas : str or None
        The atlas name, for the message.
    where : str
        E.g. ``"in this run"``.
    """
    name = f"atlas {atlas}" if atlas else "the atlas"
    if n_present == 0:
        raise InputError(f"no region of {name} has data {where} (all {n_regions} n/a)",
                         path=path, subject=subject)
    if n_present < 2:
        raise InputError(f"only {n_present} region of {name} has data {where} "
                         f"({n_regions - n_present} of {n_regions} n/a); a connectome needs "
                         "at least 2", path=path, subject=subject)


def _clean_settings(clean, confounds_path):
    """The cleaning settings recorded in every cleaned sidecar."""
    return {
        "ConfoundsFile": str(confounds_path or ""),
        "Strategy": clean.get("strategy"),
        "FramewiseDisplacementThreshold": clean.get("fd_threshold"),
        "DummyScans": int(clean.get("dummy_scans") or 0),
        "MinSegment": int(clean.get("min_segment") or 0),
        "Detrend": bool(clean.get("detrend", False)),
        "Standardize": clean.get("standardize") or False,
        "StandardizeConfounds": bool(clean.get("standardize_confounds", True)),
        "LowPass": clean.get("low_pass"), "HighPass": clean.get("high_pass"),
    }


def _clean_run(signals, names, header, raw_path, sidecar_path, confounds_path, output_path,
               info_path, qc_path, clean, t_r, subject, bold_sidecar, atlas):
    """The body of `clean_timeseries` for a run not excluded upstream."""
    if header.get("DataType") == "float32":
        signals = signals.astype(np.float32)
    missing = _missing_in_run(signals, names, header, raw_path, sidecar_path, subject, atlas)
    if missing:
        log.warning("%d of %d regions without data (n/a, left out of cleaning): %s",
                    len(missing), len(names), ", ".join(missing))
    n_volumes = len(signals)
    t_r, t_r_source = _repetition_time(t_r, clean, bold_sidecar, header, subject)
    filtering = clean.get("low_pass") is not None or clean.get("high_pass") is not None
    if (filtering or clean.get("min_seconds")) and t_r is None:
        raise InputError("filtering and min_seconds need the repetition time, and none is "
                         "given (sheet t_r, config clean.t_r, JSON sidecar) nor in the NIfTI "
                         "header", path=header.get("Source"), subject=subject)

    confounds, confound_names, sample_mask, fd = run_confounds_and_censoring(
        confounds_path, n_volumes, strategy=clean.get("strategy"),
        columns=clean.get("confounds"), fd_threshold=clean.get("fd_threshold"),
        dummy_scans=clean.get("dummy_scans"), min_segment=clean.get("min_segment"),
        subject=subject)
    kept = np.arange(n_volumes) if sample_mask is None else sample_mask
    excluded = censoring_exclusion(len(kept), t_r, clean.get("min_seconds"))
    constant = []
    if excluded:
        log.warning("run excluded: %s", excluded)
        cleaned = np.zeros((0, signals.shape[1]))
    else:
        try:
            cleaned, constant = clean_run_signals(
                signals, confounds,
                detrend=bool(clean.get("detrend", False)),
                standardize=clean.get("standardize") or False,
                standardize_confounds=bool(clean.get("standardize_confounds", True)),
                low_pass=clean.get("low_pass"), high_pass=clean.get("high_pass"), t_r=t_r,
                sample_mask=sample_mask)
        except InputError:
            raise
        except ValueError as err:  # a setting the data cannot take, e.g. too few volumes
            raise InputError(str(err), path=raw_path, subject=subject) from None
    if constant:
        log.warning("%d constant regions (no signal; cleaned to 0): %s", len(constant),
                    ", ".join(names[i] for i in constant))
    io.write_timeseries(cleaned, names, output_path)
    io.write_numeric_table(volume_qc(n_volumes, fd, kept), QC_COLUMNS, qc_path)
    io.write_json({
        "RepetitionTime": t_r, "RepetitionTimeSource": t_r_source,
        "NumberOfVolumes": int(n_volumes), "NumberOfVolumesKept": int(len(kept)),
        "NonFiniteValues": header.get("NonFiniteValues"),
        "ConstantRegions": [names[i] for i in constant],
        "SecondsKept": None if t_r is None else len(kept) * t_r,
        "MeanFramewiseDisplacement": mean_framewise_displacement(fd),
        "Excluded": excluded, "ExcludedStage": "clean_timeseries" if excluded else None,
        "Confounds": confound_names, **_clean_settings(clean, confounds_path),
        **_missing_record("MissingRegions" in header, missing),
        **{key: header[key] for key in ("MinCoverage", "LowCoverageRegions") if key in header},
    }, info_path)
    log.info("cleaned %d of %d volumes x %d regions; %d confounds; TR %s s (%s)",
             len(cleaned), n_volumes, signals.shape[1], len(confound_names), t_r, t_r_source)


def _repetition_time(t_r, clean, bold_sidecar, header, subject):
    """The run's repetition time and where it came from (`cohort.repetition_time`);
    a header that disagrees is logged."""
    header_value = header.get("RepetitionTimeHeader")
    t_r, source = repetition_time(
        sheet=t_r, config=clean.get("t_r"), header=header_value,
        sidecar=sidecar_repetition_time(bold_sidecar, subject) if bold_sidecar else None)
    if t_r is not None and header_value is not None and not math.isclose(
            t_r, header_value, rel_tol=1e-3):
        log.warning("repetition time %.4g s (%s) differs from the NIfTI header's %.4g s; "
                    "using %.4g s", t_r, source, header_value, t_r)
    return t_r, source


def combine_runs(runs, timeseries_paths, sidecar_paths, output_path, info_path,
                 subject=None, on_bad_input="fail", atlas=None):
    """Concatenate a subject's cleaned runs (nilearn's ``runs``: each run
    cleaned on its own, then stacked in run order); excluded runs are left out.

    Writes the concatenated time series and a sidecar summing the runs'
    volumes, kept volumes and seconds (``Runs`` lists the runs used,
    ``ExcludedRuns`` the others; ``Excluded`` when none is left).  Runs
    whose regions differ fail the job, or exclude the subject with
    ``on_bad_input="exclude"``.

    A region n/a in any of the included runs (``MissingRegions``) is n/a in
    the whole combined series, so that the subject has one region set
    (conservative: its present runs' volumes of that region are dropped
    rather than estimating its edges from fewer volumes than the others');
    the sidecar's ``MissingRegions`` lists them (written when a run's
    sidecar has the key or a region is missing).  Fewer than 2 regions
    with data in every run: bad input, as above.
    """
    def write_excluded(stage, err):  # only on this path: the first run's header
        names = io.read_timeseries(timeseries_paths[0], subject=runs[0])[1]
        io.write_timeseries(np.zeros((0, len(names))), names, output_path)
        io.write_json({"Runs": [], "ExcludedRuns": {}, "NumberOfVolumes": None,
                       "NumberOfVolumesKept": 0, "NonFiniteValues": None,
                       "SecondsKept": None, "MeanFramewiseDisplacement": None,
                       "Confounds": [], "Excluded": exclusion_reason(err),
                       "ExcludedStage": stage}, info_path)

    with excluded_on_bad_input("combine_runs", on_bad_input, write_excluded, subject):
        _combine_runs(runs, timeseries_paths, sidecar_paths, output_path, info_path, subject,
                      atlas)


def _combine_runs(runs, timeseries_paths, sidecar_paths, output_path, info_path, subject,
                  atlas):
    """The body of `combine_runs`."""
    blocks, infos, names, missing = [], [], None, None
    for run, path, side in zip(runs, timeseries_paths, sidecar_paths):
        info = io.read_json(side)
        signals, these = io.read_timeseries(path, subject=run)
        if names is None:
            names = these
            missing = np.zeros(len(names), dtype=bool)
        elif these != names:
            raise InputError("region names differ between the subject's runs", path=path,
                             subject=subject)
        infos.append(info)
        if not info.get("Excluded"):
            blocks.append(signals)
            try:
                missing |= missing_regions(signals)
            except ValueError as err:
                raise InputError(str(err), path=path, subject=subject) from None
    combined = np.vstack(blocks) if blocks else np.zeros((0, len(names)))
    if blocks:
        _check_regions_with_data(int((~missing).sum()), len(names), atlas,
                                 "in every run of the subject", path=timeseries_paths[0],
                                 subject=subject)
    if missing.any():
        combined[:, missing] = np.nan
        log.warning("%d of %d regions n/a in at least one run, n/a in the combined series: "
                    "%s", int(missing.sum()), len(names),
                    ", ".join(names[i] for i in np.flatnonzero(missing)))
    summary = combine_run_info(runs, infos)
    summary.update(_missing_record(any("MissingRegions" in i for i in infos),
                                   [names[i] for i in np.flatnonzero(missing)]))
    io.write_timeseries(combined, names, output_path)
    io.write_json(summary, info_path)
    log.info("%d runs concatenated (%d volumes); %d excluded", len(summary["Runs"]),
             len(combined), len(summary["ExcludedRuns"]))


def estimate_connectomes(timeseries_path, output_paths, info_path, estimator,
                         estimator_options=None, subject=None, clean_sidecar=None,
                         on_bad_input="fail", fallback=None):
    """Estimate one run's connectivity matrices (one TSV per kind) and write a
    JSON sidecar with the estimator's choices (shrinkage, alpha, convergence,
    ``fallback``: the estimator used where ``GraphicalLassoCV`` failed, see
    `connectivity.estimate_connectivity`).

    A run excluded upstream (``Excluded`` in ``clean_sidecar``) gets
    matrices of n/a and a sidecar saying why (``excluded``,
    ``excluded_stage``), so that the workflow goes on; so does a run the
    estimator cannot take, with ``on_bad_input="exclude"``
    (`excluded_on_bad_input`).

    Regions without data (columns n/a in every volume) are left out of the
    estimation and n/a in every matrix, rows and columns, diagonal included
    (`connectivity.estimate_run_connectivity`); the matrices keep the
    atlas' k regions in atlas order and the sidecar lists ``MissingRegions``
    (written when the cleaned sidecar has the key or a region is missing).
    Fewer than 2 regions with data: bad input.
    """
    signals, names = io.read_timeseries(timeseries_path, subject=subject)
    kinds = list(output_paths)

    def write_excluded(stage, reason):
        for path in output_paths.values():
            io.write_matrix(np.full((len(names), len(names)), np.nan), names, path)
        io.write_json({"estimator": estimator, "kinds": kinds, "excluded": reason,
                       "excluded_stage": stage}, info_path)

    clean_info = io.read_json(clean_sidecar) if clean_sidecar else {}
    upstream = excluded_info(clean_info)
    if upstream:
        write_excluded(*upstream)
        log.warning("run excluded at %s (%s): matrices written as n/a", *upstream)
        return
    with excluded_on_bad_input("estimate_connectomes", on_bad_input,
                               lambda stage, err: write_excluded(stage, exclusion_reason(err)),
                               subject):
        try:
            missing = [names[i] for i in np.flatnonzero(missing_regions(signals))]
            matrices, info = estimate_run_connectivity(
                signals, kinds=kinds, estimator=estimator,
                estimator_options=estimator_options or None, fallback=fallback)
        except InputError:
            raise
        except ValueError as err:
            raise InputError(str(err), path=timeseries_path, subject=subject) from None
        for kind, path in output_paths.items():
            io.write_matrix(matrices[kind], names, path)
        info["excluded"] = None
        info["excluded_stage"] = None
        info.update(_missing_record("MissingRegions" in clean_info, missing))
        if missing:
            log.warning("%d of %d regions without data: n/a rows and columns (%s)",
                        len(missing), len(names), ", ".join(missing))
        if info.get("fallback"):
            log.warning("fallback estimator: %s", info["fallback"])
        unconverged = [k for k, v in info.items() if k.startswith("converged_") and not v]
        if unconverged and not info.get("fallback"):
            log.warning("%s did not converge (%s)", estimator, ", ".join(unconverged))
        if info.get("constant_regions"):
            log.warning("constant regions (zero variance): %s",
                        ", ".join(names[i] for i in info["constant_regions"]))
        io.write_json(info, info_path)
        log.info("%s: %s", estimator, ", ".join(kinds))
