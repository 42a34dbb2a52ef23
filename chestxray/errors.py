"""Errors in what a user gave or in the machine's state (a missing file, a full disk), as opposed
to bugs: the command line prints them as one line, `error: ...`, and exits with status 2."""


class UserError(Exception):
    """Raised for a problem the user can fix; its message says what and where."""


class SaveError(UserError, OSError):
    """Training could not save its state (full disk, read-only folder); the last saved state is intact."""
