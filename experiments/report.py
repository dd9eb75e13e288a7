"""Write docs/RESULTS.md and README's results block from run folders (see fer_keras/studies/report/).

    python experiments/report.py                                  # docs/runs/* -> docs/RESULTS.md + README.md
    python experiments/report.py --runs "runs/*" --out /tmp/RESULTS.md --no-readme
    python experiments/report.py --latency 20                     # also time batch-1 inference (recorded)
    python experiments/report.py --collect runs/<run> --time-log run.time   # copy a run's small files first
    python experiments/report.py --collect runs/<run> --time-log run.time --collect-to docs/runs/speed

Every figure comes from the run files; the studies' figures are shown as the studies'.
--collect copies config/metrics/history/report (never weights) into docs/runs/<run>/ and, with
--time-log (the /usr/bin/time -v output of the command that made the run), writes timing.json.
"""
import argparse

import fer_keras  # noqa: F401  (selects Keras 2 before TensorFlow loads)
from fer_keras.errors import run_main
from fer_keras.studies.report import DEFAULT_PATTERNS, collect_run, write_report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=list(DEFAULT_PATTERNS), metavar="GLOB",
                        help="run folders or globs; runs under a folder named speed/ are speed probes, "
                             "left out of the accuracy tables (default: %(default)s)")
    parser.add_argument("--out", default="docs/RESULTS.md", help="default: %(default)s")
    parser.add_argument("--readme", default="README.md", help="README whose results block is rewritten")
    parser.add_argument("--no-readme", action="store_true", help="leave README alone")
    parser.add_argument("--latency", type=int, default=0, metavar="RUNS",
                        help="measure batch-1 latency as the median of RUNS calls (default: off)")
    parser.add_argument("--collect", nargs="+", default=None, metavar="RUN_DIR",
                        help="copy these runs' small result files to --collect-to first")
    parser.add_argument("--time-log", nargs="+", default=None, metavar="FILE[,FILE...]",
                        help="/usr/bin/time -v outputs, one per --collect run, in the same order; a run that "
                             "was resumed gives its commands' outputs joined with commas (untimed:FIRST-LAST "
                             "for epochs whose output was lost: wall from history.csv, CPU share from the rest)")
    parser.add_argument("--collect-to", default="docs/runs", help="default: %(default)s")
    args = parser.parse_args()
    if args.collect:
        logs = args.time_log or [None] * len(args.collect)
        if len(logs) != len(args.collect):
            parser.error("give one --time-log per --collect run")
        for run, log in zip(args.collect, logs):
            print(f"collected {collect_run(run, args.collect_to, log.split(',') if log else None)}")
    paths = write_report(args.runs, args.out, None if args.no_readme else args.readme, args.latency)
    for what, path in paths.items():
        print(f"wrote {what}: {path}")


if __name__ == "__main__":
    run_main(main)
