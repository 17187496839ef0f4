from ledger.market import market_fee, sale_total


def test_fee_is_five_percent():
    assert market_fee(200) == 10
    assert market_fee(360) == 18


def test_fee_rounds_up():
    assert market_fee(210) == 11
    assert market_fee(101) == 6


def test_fee_is_at_least_one_penny():
    assert market_fee(1) == 1
    assert market_fee(10) == 1


def test_sale_total_without_discount():
    assert sale_total(10, 7) == 70
    assert sale_total(99, 10) == 990


def test_bulk_discount_from_one_hundred_units():
    assert sale_total(100, 10) == 900
    assert sale_total(150, 3) == 405
    assert sale_total(101, 7) == 637
