"""The two studies' orchestration, on top of the library (nothing in fer_keras outside this package
imports it; a test keeps it so).

* :mod:`~fer_keras.training.presets`: the named recipes (Study A, Study B per augmentation, the
  shipped model), each an exact command line.
* :mod:`~fer_keras.studies.published`: the studies' own figures.
* :mod:`~fer_keras.studies.mia`: Study B's membership-inference grid (train per defence, audit, table).
* :mod:`~fer_keras.studies.robustness`: attack run folders, compare them.
* :mod:`~fer_keras.studies.label_noise`: the label-noise / memorisation sweep.
* :mod:`~fer_keras.studies.galleries`: Grad-CAM and the qualitative galleries of run folders.
* :mod:`~fer_keras.studies.report`: ``docs/RESULTS.md`` and README's results block from run files.
"""
