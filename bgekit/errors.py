"""The error types users see; the CLI prints them without a traceback."""


class BgekitError(Exception):
    """An error a user can fix: bad recipe, bad data, missing plugin.

    The CLI prints the message and exits 1 (a traceback only with ``--debug``).
    """
