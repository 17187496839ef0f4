from ledger.herd import after_raid, grow


def test_no_growth():
    assert grow(50, 0.1, 0) == 50
    assert grow(50, 0.0, 5) == 50


def test_one_year():
    assert grow(50, 0.1, 1) == 55


def test_growth_compounds_and_rounds_down_each_year():
    assert grow(50, 0.1, 3) == 66
    assert grow(7, 0.5, 2) == 15


def test_after_raid():
    assert after_raid(30, 8) == 22
    assert after_raid(5, 8) == 0
