from ledger.tax import herd_tax, tithe, total_due


def test_tithe_is_a_tenth_rounded_down():
    assert tithe(340) == 34
    assert tithe(347) == 34
    assert tithe(999) == 99


def test_small_harvests_are_exempt():
    assert tithe(0) == 0
    assert tithe(49) == 0


def test_fifty_bushels_pay():
    assert tithe(50) == 5
    assert tithe(59) == 5


def test_herd_tax_per_full_six_head():
    assert herd_tax(5) == 0
    assert herd_tax(6) == 1
    assert herd_tax(84) == 14
    assert herd_tax(84, seasons=4) == 56


def test_total_due():
    assert total_due(340, 84) == 34 + 56
    assert total_due(40, 6) == 4
