"""Herds: yearly growth and losses to raids."""


def grow(head, rate, years):
    """The herd after ``years`` of growth at ``rate`` a year, rounded down each year."""
    for _ in range(years):
        head = int(head * (1 + rate))
    return head


def after_raid(head, taken):
    """The herd after bandits take ``taken`` animals; never below zero."""
    return max(0, head - taken)
