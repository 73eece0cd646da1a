"""The CLI's one error type."""


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""
