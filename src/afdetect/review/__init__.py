"""``afdetect review``: a local web application where a clinician checks each detected AF
episode on the trace, adjudicates it and signs the recording off.

Modules: :mod:`~afdetect.review.recordings` (what is reviewed: recordings, their scans and
reference annotations), :mod:`~afdetect.review.adjudication` (the reviewer's decisions, in a
JSON sidecar next to the scan), :mod:`~afdetect.review.trace` (the signal in chunks at the
resolution drawn), :mod:`~afdetect.review.rate` (the beats and heart rate of the whole
recording), :mod:`~afdetect.review.report` (the PDF report of the reviewed recording),
:mod:`~afdetect.review.scoring` (``evaluate --review``: a review's episodes scored by
EC57), :mod:`~afdetect.review.server` (the HTTP API and the page).
"""
