"""User-facing errors: one line that names the file, row or setting and says what to do."""

import sys


class FerKerasError(Exception):
    """A mistake in the user's input or settings (bad data, missing file, unwritable folder).

    Experiment scripts print ``str(error)`` on one line and exit with status 2, without a traceback.
    """


class DataError(FerKerasError, ValueError):
    """A data file, row or image that cannot be used as given."""


class ConfigError(FerKerasError, ValueError):
    """A setting (flag, config value) that is invalid or inconsistent."""


def run_main(main) -> None:
    """Run ``main()`` for a script or the CLI: a user mistake (:class:`FerKerasError`) prints one line
    and exits 2, Ctrl-C exits 130; output is line-buffered even into a file or pipe, so progress
    shows up as it happens."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)
    try:
        main()
    except FerKerasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
