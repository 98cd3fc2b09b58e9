"""One atlas on one voxel grid: region signals of chunks of volumes, and how
much of each region a run covers.

:class:`GridAtlas` is what ``resample_atlas`` computes once per atlas and grid
and every run on that grid reads: for a ``probseg``, the maps resampled
sparsely onto the grid and their least-squares projector
(:class:`cohort_connectome.streaming.MapsProjector`, nilearn's
``NiftiMapsMasker``); for a ``dseg``, the labels resampled (nearest
neighbour) and their reducer (:class:`cohort_connectome.labels.LabelsReducer`,
nilearn's ``NiftiLabelsMasker``); for both, the coverage matrix
(:func:`cohort_connectome.coverage.coverage_matrix`): each region's voxels
(``dseg``) or weight (``probseg``), counted on the atlas's own grid, that land
in each voxel of the run grid.

A region with no voxel on the grid (outside the field of view after
resampling) is ``supported_`` False: its signal is NaN (``n/a``), never noise
or 0 (nilearn drops such a label's column, and for maps returns the rounding
noise of a rank-deficient least squares).
"""

import numpy as np
from scipy import sparse

from .errors import InputError

__all__ = ["GridAtlas"]

# Entries of the .npz written by GridAtlas.save (besides the extractor's, which
# are prefixed "extractor/").
_FORMAT = 1


def _fit_labels(spec, img, indices, shape, affine):
    """A dseg's reducer on the grid, and its one-hot weights on its own grid."""
    from .coverage import label_weights
    from .labels import LabelsReducer, resample_labels

    labels = np.asanyarray(img.dataobj)
    if labels.ndim == 4:
        labels = labels[..., 0]
    on_grid = resample_labels(labels, img.affine, shape, affine)
    reducer = LabelsReducer(indices, strategy=spec.strategy,
                            background=spec.background).fit(on_grid)
    return reducer, label_weights(labels, indices, background=spec.background)


def _fit_maps(img, indices, shape, affine):
    """A probseg's projector on the grid (maps read one volume at a time, resampled
    sparsely), and its maps on its own grid, in table order."""
    from .resampling import resample_maps_sparse
    from .streaming import MapsProjector

    maps, weights = resample_maps_sparse(img.get_filename(), shape, affine)
    order = indices - 1  # the table's order: volume index - 1
    maps, weights = maps[:, order], weights[:, order]
    # InputError when no map has a voxel on the grid
    return MapsProjector().fit(maps, grid_shape=shape), weights


class GridAtlas:
    """An atlas on one voxel grid.

    Attributes
    ----------
    name : str
    kind : {"probseg", "dseg"}
    names : list of str
        Region names, in atlas order.
    indices : ndarray of int64
        Their indices (a ``dseg``'s values, a ``probseg``'s 1-based volumes).
    extractor : MapsProjector or LabelsReducer or None
        None when the atlas cannot be used on this grid (``unusable``).
    coverage_ : scipy.sparse.csr_matrix, shape (k, n_voxels)
        Atlas weight landing in each voxel of the grid (Fortran order).
    totals_ : ndarray, shape (k,)
        Each region's whole weight on the atlas grid.
    grid_shape : tuple of 3 int
    grid_affine : ndarray (4, 4)
    unusable : str or None
        Why no region of the atlas can be extracted on this grid.
    """

    def __init__(self, name, kind, names, indices, extractor, coverage, totals, grid_shape,
                 grid_affine, unusable=None):
        self.name = str(name)
        self.kind = str(kind)
        self.names = [str(n) for n in names]
        self.indices = np.asarray(indices, dtype=np.int64)
        self.extractor = extractor
        self.coverage_ = sparse.csr_matrix(coverage)
        self.totals_ = np.asarray(totals, dtype=np.float64)
        self.grid_shape = tuple(int(s) for s in grid_shape)
        self.grid_affine = np.asarray(grid_affine, dtype=np.float64)
        self.unusable = unusable

    @property
    def n_regions(self):
        return len(self.names)

    @property
    def supported(self):
        """bool per region: it has at least one voxel on this grid."""
        if self.extractor is None:
            return np.zeros(self.n_regions, dtype=bool)
        return np.asarray(self.extractor.supported_, dtype=bool)

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, spec, img, table, shape=None, affine=None):
        """Resample the atlas onto a grid and fit its extractor.

        Parameters
        ----------
        spec : AtlasSpec
        img : nibabel image
            The atlas image (for a ``probseg`` its maps are read volume by
            volume, never whole).
        table : DataFrame
            Its region table (index, name, ...) in atlas order.
        shape, affine : the target grid; None = the atlas's own grid.

        Returns
        -------
        GridAtlas

        Raises
        ------
        InputError
            No region of the atlas has a voxel on the grid.
        """
        from .coverage import coverage_matrix

        atlas_shape = tuple(int(s) for s in img.shape[:3])
        if shape is None:
            shape, affine = atlas_shape, np.asarray(img.affine, dtype=np.float64)
        shape = tuple(int(s) for s in tuple(shape)[:3])
        affine = np.asarray(affine, dtype=np.float64)
        indices = table["index"].to_numpy(dtype=np.int64)
        names = list(table["name"])
        no_region = InputError(f"atlas {spec.name}: no region has a voxel in the run's "
                               "field of view")
        try:
            if spec.kind == "dseg":
                extractor, weights = _fit_labels(spec, img, indices, shape, affine)
            else:
                extractor, weights = _fit_maps(img, indices, shape, affine)
        except InputError:  # the grid contains none of the atlas, or no map has a voxel
            raise no_region from None
        if not np.any(extractor.supported_):
            raise no_region
        coverage, totals = coverage_matrix(weights, atlas_shape, img.affine, shape, affine)
        return cls(spec.name, spec.kind, names, indices, extractor, coverage, totals, shape,
                   affine)

    @classmethod
    def unusable_on(cls, spec, table, shape, affine, reason):
        """An atlas that cannot be used on a grid, saying why (written in place
        of a fitted one so that each run's job records the reason)."""
        n = len(table)
        n_vox = int(np.prod(shape[:3]))
        return cls(spec.name, spec.kind, list(table["name"]), table["index"].to_numpy(), None,
                   sparse.csr_matrix((n, n_vox)), np.zeros(n), shape, affine,
                   unusable=str(reason))

    # -------------------------------------------------------------- use
    def result_dtype(self, data_dtype):
        """The dtype nilearn's signals have for run data of ``data_dtype``:
        ``lstsq``'s for a ``probseg`` (float32 when maps and data are float32),
        ``img_to_signals_labels``' for a ``dseg`` (float32 for float32 data,
        else float64).  The signals computed in float64 are cast to it."""
        if self.kind == "probseg":
            return self.extractor.result_dtype(data_dtype)
        return np.dtype(np.float32 if np.dtype(data_dtype) == np.float32 else np.float64)

    def coverage(self, mask):
        """Share (0-1) of each region inside the grid and ``mask`` (bool per
        voxel, Fortran order)."""
        from .coverage import region_coverage

        return region_coverage(self.coverage_, self.totals_, np.asarray(mask, dtype=bool))

    def on_grid(self, shape, affine):
        """Whether this is the grid of a run of ``shape``/``affine``."""
        from .resampling import same_grid

        return same_grid(self.grid_shape, self.grid_affine, shape, affine)

    # -------------------------------------------------------------- files
    def to_arrays(self):
        arrays = {
            "format": np.asarray(_FORMAT),
            "name": np.asarray(self.name),
            "kind": np.asarray(self.kind),
            "names": np.asarray(self.names, dtype=str),
            "indices": self.indices,
            "grid_shape": np.asarray(self.grid_shape, dtype=np.int64),
            "grid_affine": self.grid_affine,
            "coverage_data": self.coverage_.data,
            "coverage_indices": self.coverage_.indices.astype(np.int64),
            "coverage_indptr": self.coverage_.indptr.astype(np.int64),
            "totals": self.totals_,
        }
        if self.unusable:
            arrays["unusable"] = np.asarray(self.unusable)
        if self.extractor is not None:
            for key, value in self.extractor.to_arrays().items():
                arrays[f"extractor/{key}"] = value
        return arrays

    def save(self, path):
        """Write as ``.npz``, atomically, byte-identical across reruns."""
        from .io import write_npz

        write_npz(path, self.to_arrays())
        return self

    @classmethod
    def load(cls, path):
        """A grid atlas written by :meth:`save`.

        Raises
        ------
        InputError
            Missing file, or not written by ``resample_atlas``.
        """
        from .io import read_npz

        arrays = read_npz(path, what="an atlas file written by resample_atlas")
        try:
            if int(arrays["format"]) != _FORMAT:
                raise KeyError("format")
            kind = str(arrays["kind"])
            names = [str(n) for n in arrays["names"]]
            shape = tuple(int(s) for s in arrays["grid_shape"])
            n_vox = int(np.prod(shape))
            coverage = sparse.csr_matrix(
                (arrays["coverage_data"], arrays["coverage_indices"],
                 arrays["coverage_indptr"]), shape=(len(names), n_vox))
            extractor_arrays = {k[len("extractor/"):]: v for k, v in arrays.items()
                                if k.startswith("extractor/")}
            extractor = None
            if extractor_arrays:
                if kind == "dseg":
                    from .labels import LabelsReducer as extractor_type
                else:
                    from .streaming import MapsProjector as extractor_type
                extractor = extractor_type.from_arrays(extractor_arrays)
            unusable = str(arrays["unusable"]) if "unusable" in arrays else None
            return cls(str(arrays["name"]), kind, names, arrays["indices"], extractor, coverage,
                       arrays["totals"], shape, arrays["grid_affine"], unusable=unusable)
        except (KeyError, ValueError) as err:
            raise InputError(f"not an atlas file written by resample_atlas (rerun it): "
                             f"{err}", path=path) from None
