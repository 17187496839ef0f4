from ledger.coins import format_amount, from_pennies, to_pennies


def test_to_pennies():
    assert to_pennies(1) == 120
    assert to_pennies(2, 5, 7) == 297
    assert to_pennies(marks=3) == 30


def test_from_pennies():
    assert from_pennies(297) == (2, 5, 7)
    assert from_pennies(119) == (0, 11, 9)
    assert from_pennies(120) == (1, 0, 0)


def test_round_trip():
    for total in (0, 1, 9, 10, 11, 119, 120, 121, 1000, 12345):
        assert to_pennies(*from_pennies(total)) == total


def test_format_amount():
    assert format_amount(297) == "2 crowns 5 marks 7 pennies"
    assert format_amount(135) == "1 crown 1 mark 5 pennies"
    assert format_amount(121) == "1 crown 1 penny"
    assert format_amount(20) == "2 marks"
    assert format_amount(0) == "0 pennies"
