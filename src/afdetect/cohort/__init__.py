"""Cohorts: ``afdetect scan INPUT... --out RESULTS/``, thousands of recordings at a time.

One module per responsibility:

- :mod:`~afdetect.cohort.inputs`: what the cohort is (folders walked recursively, text
  lists of records, CSV manifests with metadata) and where each recording's results go;
- :mod:`~afdetect.cohort.worker`: scanning one recording (the ordinary ``afdetect scan``
  core, the model loaded once per process) into the bytes of its result files;
- :mod:`~afdetect.cohort.backends`: where that runs: in this process, a local process
  pool (``--jobs``) or a Dask cluster (``--cluster``), retrying recordings whose worker
  died;
- :mod:`~afdetect.cohort.manifest`: ``RESULTS/manifest.json``, what is done and with
  what, so that a re-run skips it;
- :mod:`~afdetect.cohort.summary`: ``RESULTS/cohort.csv`` and ``RESULTS/failures.csv``;
- :mod:`~afdetect.cohort.run`: the driver tying them together.
"""

from afdetect.cohort.run import CohortReport, CohortSettings, run_cohort

__all__ = ["CohortReport", "CohortSettings", "run_cohort"]
