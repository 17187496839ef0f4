import pytest

from ledger.accounts import Account, InsufficientFunds


def test_new_account_is_empty():
    account = Account("Alda")
    assert account.balance == 0
    assert account.history() == []


def test_deposit_and_withdraw():
    account = Account("Alda")
    account.deposit(100)
    account.withdraw(30)
    assert account.balance == 70
    assert account.history() == [("deposit", 100), ("withdraw", 30)]


def test_overdraw_is_refused():
    account = Account("Bram")
    account.deposit(20)
    with pytest.raises(InsufficientFunds):
        account.withdraw(21)
    assert account.balance == 20


def test_withdraw_everything():
    account = Account("Bram")
    account.deposit(20)
    account.withdraw(20)
    assert account.balance == 0


@pytest.mark.parametrize("amount", [0, -5, 2.5, "10"])
def test_bad_amounts(amount):
    account = Account("Cora")
    with pytest.raises(ValueError):
        account.deposit(amount)


def test_history_is_a_copy():
    account = Account("Cora")
    account.deposit(5)
    account.history().append(("deposit", 1000))
    assert account.history() == [("deposit", 5)]
