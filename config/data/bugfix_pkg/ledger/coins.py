"""Coins of the kingdom: 1 gold crown = 12 silver marks, 1 silver mark = 10 copper pennies."""

PENNIES_PER_MARK = 10
MARKS_PER_CROWN = 12
PENNIES_PER_CROWN = PENNIES_PER_MARK * MARKS_PER_CROWN


def to_pennies(crowns=0, marks=0, pennies=0):
    """The total of an amount in pennies."""
    return crowns * PENNIES_PER_CROWN + marks * PENNIES_PER_MARK + pennies


def from_pennies(total):
    """Split ``total`` pennies into (crowns, marks, pennies), largest coins first."""
    crowns, rest = divmod(total, PENNIES_PER_CROWN)
    marks, pennies = divmod(rest, PENNIES_PER_MARK)
    return crowns, marks, pennies


def _part(count, singular, plural):
    return f"{count} {singular if count == 1 else plural}"


def format_amount(total):
    """An amount in words, e.g. ``2 crowns 1 mark 5 pennies``; zero parts are left out."""
    crowns, marks, pennies = from_pennies(total)
    parts = []
    if crowns:
        parts.append(_part(crowns, "crown", "crowns"))
    if marks:
        parts.append(_part(marks, "mark", "marks"))
    if pennies or not parts:
        parts.append(_part(pennies, "penny", "pennies"))
    return " ".join(parts)
