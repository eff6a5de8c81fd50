"""Identifier sequences of one account, shaped like IB's and unique across accounts.

Each account owns a disjoint block of numbers, so a multi-account file never repeats a
`transactionID`, `tradeID`, `ibOrderID` or `ibExecID`; the sequences live as long as the
account's simulation, so consecutive windows keep counting instead of restarting.
"""

from __future__ import annotations

from itertools import count

_BLOCK = 1_000_000_000


class IdSource:
    def __init__(self, account_index: int) -> None:
        self._account = account_index
        self._transactions = count(20 * _BLOCK + account_index * _BLOCK + 1)
        self._trades = count(2 * _BLOCK + account_index * 10_000_000 + 1)
        self._orders = count(500_000_000 + account_index * 10_000_000 + 1)
        self._executions = count(1)

    def transaction(self) -> str:
        """`transactionID`: the natural key of trades, cash, corporate actions, transfers."""
        return str(next(self._transactions))

    def trade(self) -> str:
        """`tradeID`: shared by the fills of one order, so it is not a key."""
        return str(next(self._trades))

    def order(self) -> str:
        """`ibOrderID`."""
        return str(next(self._orders))

    def execution(self) -> str:
        """`ibExecID` in IB's dotted hex form, e.g. `0001000a.0000002f.01.01`."""
        return f"{0x10000 + self._account:08x}.{next(self._executions):08x}.01.01"
