"""The bulletin's one error."""


class BulletinError(ValueError):
    """A bulletin cannot be made as asked (a bad period, no warehouse)."""
