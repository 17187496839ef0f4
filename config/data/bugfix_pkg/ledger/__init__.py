"""The accounts of Kestrel Ford: coins, the king's tax, the market, herds and accounts."""
