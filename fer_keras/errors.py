"""User-facing errors: one line that names the file, row or setting and says what to do."""


class FerKerasError(Exception):
    """A mistake in the user's input or settings (bad data, missing file, unwritable folder).

    Experiment scripts print ``str(error)`` on one line and exit with status 2, without a traceback.
    """


class DataError(FerKerasError, ValueError):
    """A data file, row or image that cannot be used as given."""


class ConfigError(FerKerasError, ValueError):
    """A setting (flag, config value) that is invalid or inconsistent."""
