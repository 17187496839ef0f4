"""The Kestrel Ford market: the market fee and bulk sales. Prices are in pennies."""

FEE_PERCENT = 5
BULK_QUANTITY = 100
BULK_DISCOUNT_PERCENT = 10


def market_fee(price):
    """5% of the sale price, rounded up to a whole penny, at least 1 penny."""
    fee = -(-price * FEE_PERCENT // 100)
    return max(1, fee)


def sale_total(quantity, unit_price):
    """Quantity times unit price, less 10% (rounded down) for 100 or more units."""
    total = quantity * unit_price
    if quantity >= BULK_QUANTITY:
        total -= total * BULK_DISCOUNT_PERCENT // 100
    return total
