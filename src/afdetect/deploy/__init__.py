"""Deployment above the monitor: ``afdetect compress``'s packaging, ``report``, the C99
library's export (hand-written runtime in ``c/``, generated tables), its Cortex-M targets
and build-system files, and ONNX. The model file and integer engine they build on are in
:mod:`afdetect.runtime`."""
