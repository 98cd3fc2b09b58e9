"""An atlas's region table and its checks against the image
(cohort_connectome.atlases): one line naming the atlas, the file and the
problem, on synthetic images and on the real AAL and Harvard-Oxford files."""

import nibabel as nib
import numpy as np
import pytest

from cohort_connectome.atlases import (AtlasSpec, check_atlas, grids_covered, provenance,
                                       read_region_table)
from cohort_connectome.errors import InputError
from conftest import require_shared

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def write(path, text):
    path.write_text(text)
    return path


def labels_image(tmp_path, data, name="labels.nii.gz", affine=AFFINE):
    path = tmp_path / name
    nib.Nifti1Image(np.asarray(data), affine).to_filename(path)
    return path


def one_line(err, *parts):
    text = str(err.value)
    assert "\n" not in text
    for part in parts:
        assert part in text, text


def test_region_table_columns_and_defaults(tmp_path):
    table = read_region_table(write(tmp_path / "l.tsv", "index\tname\n3\t A \n7\tB\n"))
    assert table["index"].tolist() == [3, 7]
    assert table["name"].tolist() == ["A", "B"]
    assert table["network"].tolist() == ["", ""]
    assert table[["x", "y", "z"]].isna().all().all()


def test_region_table_msdl_header(tmp_path):
    """MSDL's x,y,z,name,net name: rows are the maps in order (index 1..k)."""
    table = read_region_table(write(tmp_path / "l.csv",
                                    "x,y,z,name,net name\n1,2,3, L Aud ,Aud\n4,5,6,R Aud,Aud\n"))
    assert table["index"].tolist() == [1, 2]
    assert table["name"].tolist() == ["L Aud", "R Aud"]
    assert table["network"].tolist() == ["Aud", "Aud"]
    assert table["x"].tolist() == [1.0, 4.0]


@pytest.mark.parametrize("text, problem", [
    ("index\tlabel_name\n1\ta\n", "has no 'name' column"),
    ("index\tname\n1.5\ta\n", "has an index that is not a whole number: '1.5' (row 1)"),
    ("index\tname\n1\ta\n1\tb\n", "has duplicate indexes: 1"),
    ("index\tname\n1\ta\n2\ta\n", "has duplicate names: a"),
    ("index\tname\n1\ta\n2\t\n", "has an empty name (row 2)"),
    ("index\tname\tx\ty\n1\ta\t0\t0\n", "has only some coordinates (x, y)"),
    ("index\tname\tx\ty\tz\n1\ta\t0\tq\t0\n", "has a missing or non-numeric y coordinate"),
    ("index\tname\n", "has no rows"),
])
def test_region_table_errors(tmp_path, text, problem):
    path = write(tmp_path / "l.tsv", text)
    with pytest.raises(InputError) as err:
        read_region_table(path, atlas="aal")
    one_line(err, str(path), "atlas aal: labels table", problem)


def test_dseg_checks(tmp_path):
    data = np.zeros((4, 4, 4), dtype=np.int16)
    data[0, 0, 0], data[1, 1, 1], data[2, 2, 2] = 5, 9, 11
    image = labels_image(tmp_path, data)
    good = write(tmp_path / "good.tsv", "index\tname\n5\ta\n9\tb\n11\tc\n")
    spec = AtlasSpec("aal", "dseg", str(image), str(good))
    table, img = check_atlas(spec)
    assert table["index"].tolist() == [5, 9, 11]

    cases = [
        ("index\tname\n5\ta\n9\tb\n11\tc\n12\td\n",
         "lists index(es) 12 that do not occur in"),
        ("index\tname\n5\ta\n9\tb\n", "has no row for value(s) 11 of"),
        ("index\tname\n0\tbg\n5\ta\n9\tb\n11\tc\n", "lists the background value 0 as a region"),
    ]
    for text, problem in cases:
        spec = AtlasSpec("aal", "dseg", str(image), str(write(tmp_path / "t.tsv", text)))
        with pytest.raises(InputError) as err:
            check_atlas(spec)
        one_line(err, "atlas aal:", problem)


def test_dseg_must_be_3d_integers(tmp_path):
    labels = write(tmp_path / "l.tsv", "index\tname\n1\ta\n")
    floats = labels_image(tmp_path, np.full((3, 3, 3), 0.5, dtype=np.float32), "f.nii.gz")
    with pytest.raises(InputError) as err:
        check_atlas(AtlasSpec("x", "dseg", str(floats), str(labels)))
    one_line(err, str(floats), "atlas x: a dseg must hold integer labels", "(e.g. 0.5)")
    four = labels_image(tmp_path, np.ones((3, 3, 3, 2), dtype=np.int16), "4d.nii.gz")
    with pytest.raises(InputError) as err:
        check_atlas(AtlasSpec("x", "dseg", str(four), str(labels)))
    one_line(err, "a dseg must be a 3D image of integer labels, got shape (3, 3, 3, 2)")
    # a 4D image of one volume counts as 3D (nilearn's check_niimg_3d)
    single = labels_image(tmp_path, np.ones((3, 3, 3, 1), dtype=np.int16), "one.nii.gz")
    check_atlas(AtlasSpec("x", "dseg", str(single), str(labels)))


def test_probseg_checks(tmp_path):
    maps = labels_image(tmp_path, np.ones((3, 3, 3, 3), dtype=np.float32), "maps.nii.gz")
    spec = AtlasSpec("m", "probseg", str(maps),
                     str(write(tmp_path / "l.tsv", "name\na\nb\nc\n")))
    assert check_atlas(spec)[0]["index"].tolist() == [1, 2, 3]
    for text, problem in [("index\tname\n1\ta\n2\tb\n", "has no row for volume(s) 3"),
                          ("index\tname\n1\ta\n2\tb\n3\tc\n4\td\n",
                           "lists volume(s) 4 but"),
                          ]:
        bad = AtlasSpec("m", "probseg", str(maps), str(write(tmp_path / "t.tsv", text)))
        with pytest.raises(InputError) as err:
            check_atlas(bad)
        one_line(err, "atlas m: labels table", problem)
    three = labels_image(tmp_path, np.ones((3, 3, 3), dtype=np.float32), "3d.nii.gz")
    with pytest.raises(InputError) as err:
        check_atlas(AtlasSpec("m", "probseg", str(three), spec.labels))
    one_line(err, "a probseg must be a 4D image", "is a dseg")
    with pytest.raises(InputError) as err:
        check_atlas(AtlasSpec("m", "probseg", str(tmp_path / "absent.nii.gz"), spec.labels))
    one_line(err, "atlas m: image not found")


def test_grids_covered():
    img = nib.Nifti1Image(np.zeros((10, 10, 10), dtype=np.int16), AFFINE)
    inside = ((5, 5, 5), AFFINE)
    far = ((5, 5, 5), np.array([[2.0, 0, 0, 500], [0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 1]]))
    assert grids_covered(img, [inside])
    assert grids_covered(img, [far, inside])
    assert not grids_covered(img, [far])


def test_provenance_of_builtin_and_user_atlases():
    msdl = provenance(AtlasSpec("msdl", "probseg", "m.nii", "l.csv", fetch="msdl"))
    assert msdl["URL"] == "https://team.inria.fr/parietal/files/2015/01/MSDL_rois.zip"
    assert msdl["ArchiveSha256"].startswith("212dc16e")
    user = provenance(AtlasSpec("aal", "dseg", "a.nii", "a.tsv"),
                      {"licence": "GPL", "url": "https://example.org/aal"})
    assert (user["Source"], user["Licence"], user["URL"]) == \
        ("a.nii", "GPL", "https://example.org/aal")


def test_provenance_of_a_library_atlas():
    """Fetcher, parameters, URL(s), reference and licence are known from the config;
    the archives' sha256 are known once downloaded (prepare_atlas adds them)."""
    spec = AtlasSpec("ho", "probseg", "i.nii.gz", "r.tsv", fetch="harvard_oxford",
                     parameters=(("atlas_name", "sub-prob-2mm"), ("symmetric_split", False)))
    found = provenance(spec)
    assert found == {
        "Source": "fetch:harvard_oxford",
        "Description": "Harvard-Oxford cortical and subcortical structural atlases, from "
                       "FSL 5.0 (MNI152NLin6Asym)",
        "Fetcher": "nilearn.datasets.fetch_atlas_harvard_oxford (0.13.1)",
        "Parameters": {"atlas_name": "sub-prob-2mm", "symmetric_split": False},
        "URL": "https://www.nitrc.org/frs/download.php/9902/HarvardOxford.tgz",
        "ArchiveSha256": None,
        "Licence": "FSL licence (non-commercial use), see "
                   "https://fsl.fmrib.ox.ac.uk/fsl/docs/#/license",
        "Reference": found["Reference"]}
    assert "Makris" in found["Reference"] and spec.library
    pauli = provenance(AtlasSpec("p", "dseg", "i", "r", fetch="pauli",
                                 parameters=(("atlas_type", "deterministic"),)))
    assert pauli["URL"] == ["https://osf.io/5mqfx/download", "https://osf.io/6qrcb/download"]
    assert pauli["Licence"].startswith("CC BY 4.0")


def test_real_aal_and_harvard_oxford_tables(tmp_path):
    """The real AAL (big-endian int16, codes 2001..9170) read with a table made
    from its XML, and Harvard-Oxford maxprob (uint8, XML index + 1)."""
    import xml.etree.ElementTree as ET

    aal = require_shared("atlases", "aal")
    rows = [(int(label.find("index").text), label.find("name").text)
            for label in ET.parse(aal / "AAL.xml").getroot().iter("label")]
    table = write(tmp_path / "aal.tsv",
                  "index\tname\n" + "".join(f"{i}\t{n}\n" for i, n in rows))
    found, img = check_atlas(AtlasSpec("aal", "dseg", str(aal / "AAL.nii"), str(table)))
    assert len(found) == 116 and found["index"].iloc[0] == 2001
    # one row short: the unlisted code is named
    short = write(tmp_path / "short.tsv",
                  "index\tname\n" + "".join(f"{i}\t{n}\n" for i, n in rows[:-1]))
    with pytest.raises(InputError) as err:
        check_atlas(AtlasSpec("aal", "dseg", str(aal / "AAL.nii"), str(short)))
    one_line(err, f"has no row for value(s) {rows[-1][0]} of")

    ho = require_shared("atlases", "harvard_oxford")
    names = [label.text for label in
             ET.parse(ho / "HarvardOxford-Cortical.xml").getroot().iter("label")]
    table = write(tmp_path / "ho.tsv", "index\tname\n"
                  + "".join(f"{i + 1}\t{n}\n" for i, n in enumerate(names)))
    found, _ = check_atlas(AtlasSpec(
        "ho", "dseg", str(ho / "HarvardOxford-cort-maxprob-thr25-2mm.nii.gz"), str(table)))
    assert len(found) == 48
