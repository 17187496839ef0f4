"""The king's tax: the tithe on harvests and the herd tax."""

TITHE_EXEMPT_BELOW = 50
HEAD_PER_COIN = 6


def tithe(bushels):
    """One tenth of a harvest, rounded down; harvests under 50 bushels pay nothing."""
    if bushels < TITHE_EXEMPT_BELOW:
        return 0
    return bushels // 10


def herd_tax(head, seasons=1):
    """One silver coin per full 6 animals, per season."""
    return (head // HEAD_PER_COIN) * seasons


def total_due(harvest, head):
    """The tithe of a harvest plus a year (four seasons) of herd tax."""
    return tithe(harvest) + herd_tax(head, seasons=4)
