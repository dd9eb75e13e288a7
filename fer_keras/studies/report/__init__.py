"""The results report: run folders -> ``docs/RESULTS.md`` and the results block of ``README.md``.

Every figure in the report is read from run files (``config.json``, ``metrics.json``,
``history.csv``, ``robustness.json``, a privacy run's ``summary.json``, and the two files added
when a run is collected for the docs: ``timing.json`` from ``/usr/bin/time -v`` and
``profile.json`` from :mod:`fer_keras.profiler`) or computed from them; the only typed-in figures
are the studies' own (:mod:`fer_keras.studies.published`), always shown as the study's.

* :mod:`~fer_keras.studies.report.collect`: a run's small files (and its timing) into ``docs/runs/``.
* :mod:`~fer_keras.studies.report.load`: run folders as dicts, model cost.
* :mod:`~fer_keras.studies.report.tables`: what a run is (labels, splits, marks) and table rows.
* :mod:`~fer_keras.studies.report.render`: the documents.
"""
from fer_keras.studies.report.collect import collect_run, parse_time_log
from fer_keras.studies.report.load import DEFAULT_PATTERNS, find_runs, load_run
from fer_keras.studies.report.render import README_END, README_START, write_report

__all__ = ["DEFAULT_PATTERNS", "README_END", "README_START", "collect_run", "find_runs", "load_run",
           "parse_time_log", "write_report"]
