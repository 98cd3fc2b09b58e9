"""Jobs of the source rules (workflow/rules/sources.smk):
the demo cohort and the participants tables of the ADHD-200 and BIDS cohorts.

The downloads themselves (fetch_msdl, fetch_adhd_metadata, fetch_adhd_subject)
are `cohort_connectome.fetch.datasets` functions, called by their adapters.
"""

from pathlib import Path

import nibabel as nib

from .. import cohort, demo, io
from ..bids import read_participants
from ..errors import InputError
from ..fetch.datasets import adhd_participants
from .runtime import log


# --------------------------------------------------------------------------
# demo cohort
# --------------------------------------------------------------------------
def simulate_demo_atlas(maps_path, labels_path, truth_paths, participants_path,
                        n_subjects, seed, demo_root):
    """Write the demo atlas (maps + labels), the ground-truth precisions and
    the demo's participants table (a valid cohort sheet)."""
    maps = demo.evaluate_maps(demo.ATLAS_SHAPE, demo.ATLAS_AFFINE)
    img = nib.Nifti1Image(maps, demo.ATLAS_AFFINE)
    img.header.set_xyzt_units("mm")
    io.save_nifti(img, maps_path)
    labels = demo.demo_labels()
    io.write_table(labels, labels_path)
    truths = demo.ground_truth_precisions(seed)
    for group, path in truth_paths.items():
        io.write_matrix(truths[group], labels["name"], path)
    design = demo.demo_design(n_subjects, seed)
    table = cohort.demo_cohort(design, demo_root)
    sheet_dir = Path(participants_path).parent
    sheet = cohort.phenotype(table)
    sheet.insert(1, "func", [str(Path(p).relative_to(sheet_dir)) for p in table["func"]])
    sheet.insert(2, "confounds",
                 [str(Path(p).relative_to(sheet_dir)) for p in table["confounds"]])
    io.write_table(sheet, participants_path)
    log.info("demo atlas: %d maps on a %s grid; %d subjects", maps.shape[3],
             "x".join(map(str, maps.shape[:3])), n_subjects)


def simulate_demo_run(subject, truth_path, run_path, confounds_path, signals_path,
                      n_subjects, seed):
    """Write one demo subject's 4D run, confounds table and true region signals."""
    design = demo.demo_design(n_subjects, seed)
    row = design[[f"sub-{p}" == subject for p in design["participant_id"]]]
    if row.empty:
        raise InputError(f"{subject} is not in the demo design of {n_subjects} subjects")
    row = row.iloc[0]
    precision, names = io.read_matrix(truth_path)
    data, affine, confounds, signals = demo.simulate_run(row, precision, seed=seed)
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_zooms((3.0, 3.0, 3.0, float(row["t_r"])))
    io.save_nifti(img, run_path)
    io.write_table(confounds, confounds_path)
    io.write_timeseries(signals, names, signals_path)
    log.info("%s: %d volumes, TR %.2f s, group %s", subject, data.shape[3], row["t_r"],
             row["group"])


# --------------------------------------------------------------------------
# ADHD-200 metadata
# --------------------------------------------------------------------------
def write_adhd_participants(phenotypic_path, slice_timing_path, subject_ids, output_path):
    """Write the ADHD-200 participants table (sub-<id>, t_r, phenotype)."""
    table = adhd_participants(phenotypic_path, slice_timing_path, subject_ids)
    table["participant_id"] = [io.participant_label(p) for p in table["participant_id"]]
    io.write_table(table, output_path)
    log.info("%d participants; sites %s", len(table),
             ", ".join(sorted(set(map(str, table["site"])))))


def write_adhd_sidecar(phenotypic_path, slice_timing_path, subject_id, output_path):
    """Write a run's JSON sidecar with the true repetition time of its site.

    nilearn's fetch_adhd returns t_r=2.0 for every subject; the sites' real
    values (slice-timing table) range from 1.96 to 2.5 s.
    """
    row = adhd_participants(phenotypic_path, slice_timing_path, [subject_id]).iloc[0]
    io.write_json({"RepetitionTime": float(row["t_r"]), "Site": str(row["site"]),
                   "Source": str(slice_timing_path)}, output_path)
    log.info("%s: site %s, TR %.2f s", subject_id, row["site"], row["t_r"])


def write_bids_participants(participants_path, participant_ids, output_path):
    """Write the phenotype of a BIDS cohort's participants (``participant_id``
    only when the dataset has no participants.tsv)."""
    table = read_participants(participants_path, participant_ids)
    io.write_table(table, output_path)
    log.info("%d participants; phenotype columns: %s", len(table),
             ", ".join(table.columns[1:]) or "none")
