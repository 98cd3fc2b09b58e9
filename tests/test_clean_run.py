"""Cleaning one run of the workflow (the end section of
`cohort_connectome.signal`): when censoring excludes a run, and the constant
regions set to 0."""

import numpy as np
import pytest

from cohort_connectome.signal import censoring_exclusion, clean_run_signals, clean_signals


def test_censoring_exclusion():
    assert censoring_exclusion(0) == "censoring keeps no volume"
    assert censoring_exclusion(0, 2.0, 60) == "censoring keeps no volume"
    assert censoring_exclusion(56, 2.0, 120) == ("112.0 s kept after censoring, less than "
                                                 "min_seconds 120 s")
    assert censoring_exclusion(60, 2.0, 120) is None
    assert censoring_exclusion(10) is None
    assert censoring_exclusion(10, None, 0) is None


@pytest.mark.parametrize("settings, zeroed", [
    ({"detrend": True}, True),
    ({"standardize": "zscore_sample"}, True),
    ({"high_pass": 0.01, "t_r": 2.0}, True),
    ({"low_pass": 0.1, "t_r": 2.0}, False),
])
def test_constant_regions_are_cleaned_to_zero_when_the_mean_is_removed(settings, zeroed):
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((80, 3)) + 10
    signals[:, 1] = 0.1  # its mean removed, rounding noise is left
    mask = np.arange(5, 80)
    cleaned, constant = clean_run_signals(signals, sample_mask=mask, **settings)
    assert constant == [1]
    expected = clean_signals(signals, sample_mask=mask, **settings)
    np.testing.assert_array_equal(cleaned[:, [0, 2]], expected[:, [0, 2]])
    if zeroed:
        assert not cleaned[:, 1].any() and expected[:, 1].any()
    else:
        np.testing.assert_array_equal(cleaned[:, 1], expected[:, 1])


def test_no_constant_region_is_clean_signals():
    rng = np.random.default_rng(1)
    signals = rng.standard_normal((50, 4))
    confounds = rng.standard_normal((50, 2))
    cleaned, constant = clean_run_signals(signals, confounds, detrend=True,
                                          standardize="zscore_sample")
    assert constant == []
    np.testing.assert_array_equal(cleaned, clean_signals(signals, confounds, detrend=True,
                                                         standardize="zscore_sample"))
