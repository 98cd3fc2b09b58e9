"""Downloads: the MSDL atlas, the atlas library and the ADHD-200 subset of nilearn's example.

By layer:

``download``
    pooch downloads into the data cache: sha256 pinning (known hashes, user
    registry, lock file), mirrors, retries, progress as log lines.
``archives``
    safe extraction of zip and tar(.gz) archives.
``datasets``
    MSDL and ADHD-200: URLs, subject ids, cache paths, the fetchers, and the
    ADHD-200 participants table.
``atlas_library``
    the atlases fetched by name (difumo, schaefer, harvard_oxford, aal,
    basc, smith, yeo, pauli) as nilearn's fetchers, written as an image and a
    region table.

The names the workflow's rule files use (``fetch.adhd_ids``,
``fetch.msdl_paths``...) are imported here; code and tests import the layer
modules.
"""

from .datasets import (ADHD_AFFINE, ADHD_SHAPE, adhd_ids, adhd_metadata_paths,
                       adhd_subject_paths, msdl_paths)
from .download import default_cache_dir

__all__ = ["ADHD_AFFINE", "ADHD_SHAPE", "adhd_ids", "adhd_metadata_paths",
           "adhd_subject_paths", "default_cache_dir", "msdl_paths"]
