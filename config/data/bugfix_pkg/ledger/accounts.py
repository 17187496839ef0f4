"""A villager's account with the reeve, in pennies."""


class InsufficientFunds(Exception):
    """A withdrawal larger than the balance."""


class Account:
    def __init__(self, owner):
        self.owner = owner
        self.balance = 0
        self._history = []

    def deposit(self, amount):
        self._check(amount)
        self.balance += amount
        self._history.append(("deposit", amount))

    def withdraw(self, amount):
        self._check(amount)
        if amount > self.balance:
            raise InsufficientFunds(f"{self.owner} has {self.balance}, cannot withdraw {amount}")
        self.balance -= amount
        self._history.append(("withdraw", amount))

    def history(self):
        """A copy of the (kind, amount) entries, oldest first."""
        return list(self._history)

    @staticmethod
    def _check(amount):
        if not isinstance(amount, int) or amount <= 0:
            raise ValueError(f"amount must be a positive whole number of pennies, got {amount!r}")
