"""fMRIPrep derivatives as a cohort: find the preprocessed runs and their files.

For every ``sub-*/[ses-*/]func/*_space-<space>[_res-*]_desc-preproc_bold.nii[.gz]``
of the requested space and task, the matching
``*_desc-confounds_timeseries.tsv`` (the same entities without ``space``,
``res`` and ``desc``) and the BOLD JSON sidecar (``RepetitionTime``).  A run is
named by its entities (``sub-01_ses-1_task-rest_run-2``) and its outputs go to
``results/sub-01/ses-1/func/``, as BIDS derivatives are laid out.
"""

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .io import read_table

#: Entities that name a run, in BIDS order (space, res and desc describe the file).
RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")
_ENTITY = re.compile(r"^([a-zA-Z]+)-([a-zA-Z0-9]+)$")


def parse_entities(filename):
    """BIDS entities of a file name, in order, and its suffix.

    Parameters
    ----------
    filename : str
        e.g. ``sub-01_ses-1_task-rest_space-MNI_desc-preproc_bold.nii.gz``.

    Returns
    -------
    entities : dict
        ``{"sub": "01", "ses": "1", ...}`` in file-name order.
    suffix : str
        ``"bold"`` in the example.
    """
    stem = os.path.basename(filename).split(".")[0]
    parts = stem.split("_")
    entities = {}
    for part in parts[:-1]:
        match = _ENTITY.match(part)
        if not match:
            raise InputError(f"'{part}' is not a BIDS key-value entity", path=filename)
        entities[match.group(1)] = match.group(2)
    return entities, parts[-1]


def run_name(entities):
    """``sub-01_ses-1_task-rest_run-2``: the entities that name a run."""
    return "_".join(f"{k}-{entities[k]}" for k in RUN_ENTITIES if k in entities)


def find_runs(bids_dir, space="MNI152NLin2009cAsym", task="rest"):
    """Preprocessed runs of an fMRIPrep derivatives folder.

    Parameters
    ----------
    bids_dir : str or Path
        The fMRIPrep output folder (holding ``sub-*``).
    space : str
        ``space-`` entity of the runs to use.
    task : str
        ``task-`` entity of the runs to use.

    Returns
    -------
    pandas.DataFrame
        Indexed by run name; columns ``participant_id`` (``sub-<id>``),
        ``folder`` (``sub-<id>[/ses-<s>]``), ``session``, ``task``, ``run``
        (entity values, empty when absent), ``func``, ``confounds`` (empty
        when the file is missing: the run's job reports it), ``sidecar``
        (empty when missing), ``mask`` (the run's ``desc-brain_mask``, empty
        when missing: its non-zero voxels then count as brain for region
        coverage), ``t_r`` (NaN: the sidecar decides).
    """
    root = Path(bids_dir)
    if not root.is_dir():
        raise InputError("fMRIPrep derivatives folder not found", path=root)
    rows = {}
    patterns = ("sub-*/func/*_desc-preproc_bold.nii*", "sub-*/ses-*/func/*_desc-preproc_bold.nii*")
    for pattern in patterns:
        for path in sorted(root.glob(pattern)):
            if not path.name.endswith((".nii", ".nii.gz")):
                continue
            entities, _ = parse_entities(path.name)
            if entities.get("space") != space or entities.get("task") != task:
                continue
            name = run_name(entities)
            if name in rows:
                raise InputError(f"two preprocessed runs named {name} in space {space} "
                                 f"(e.g. several resolutions): {rows[name]['func']} and "
                                 f"{path}", path=root)
            folder = f"sub-{entities['sub']}" + (f"/ses-{entities['ses']}"
                                                 if "ses" in entities else "")
            confounds = path.parent / f"{name}_desc-confounds_timeseries.tsv"
            sidecar = path.parent / (path.name.split(".")[0] + ".json")
            # fMRIPrep's brain mask of the run, for region coverage
            mask = path.parent / path.name.replace("_desc-preproc_bold", "_desc-brain_mask")
            rows[name] = {
                "participant_id": f"sub-{entities['sub']}",
                "folder": folder,
                "session": entities.get("ses", ""),
                "task": entities.get("task", ""),
                "run": entities.get("run", ""),
                "func": str(path),
                "confounds": str(confounds) if confounds.is_file() else "",
                "sidecar": str(sidecar) if sidecar.is_file() else "",
                "mask": str(mask) if mask != path and mask.is_file() else "",
                "t_r": np.nan,
            }
    if not rows:
        raise InputError(f"no sub-*/[ses-*/]func/*_space-{space}*_desc-preproc_bold.nii[.gz] "
                         f"of task {task}", path=root)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "key"
    return table.sort_index()


def read_participants(path, participant_ids):
    """Phenotype of the given participants from a BIDS ``participants.tsv``.

    Missing file or rows give participants with no phenotype columns
    (``participant_id`` only), so a cohort without phenotype still runs.
    """
    if path is None or not Path(path).is_file():
        return pd.DataFrame({"participant_id": list(participant_ids)})
    table = read_table(path, dtype={"participant_id": str})
    if "participant_id" not in table.columns:
        raise InputError("participants table lacks the column 'participant_id'", path=path)
    table["participant_id"] = [p if str(p).startswith("sub-") else f"sub-{p}"
                               for p in table["participant_id"]]
    table = table.drop_duplicates("participant_id").set_index("participant_id")
    return table.reindex(list(participant_ids)).rename_axis("participant_id").reset_index()
