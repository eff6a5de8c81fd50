"""A mixed scenario touching every event kind, for determinism tests."""

from __future__ import annotations

import pytest

from qm_pipeline_tests.lib.ledger.builders import (
    book_trade,
    corporate_action,
    eae,
    option,
    trade,
    transfer,
)


@pytest.fixture
def scenario() -> dict:
    trades = [
        trade("2024-01-02", 100, 50, commission=1, tid="1001"),
        trade("2024-01-02", 50, 50, commission=1, tid="1002"),  # same second as 1001
        trade("2024-01-02", 20, 50, commission=1, tid="999"),  # shorter id, same second
        trade("2024-01-20", -120, 45, commission=1, tid="1003"),  # a loss
        trade("2024-01-25", 80, 44, commission=1, tid="1004", account="U2"),  # other account
        trade("2024-02-01", -30, 60, conid="BBB", tid="1005"),  # short
        trade("2024-02-03", 30, 55, conid="BBB", tid="1006"),
        option("2024-02-05", 2, "1.5", conid="AAA_C60", put_call="C", strike=60, tid="1007"),
        book_trade(option("2024-03-15", -2, 0, conid="AAA_C60", put_call="C", strike=60,
                          tid="1008", time="16:20"), "Ep"),
    ]
    return {
        "trades": trades,
        "option_events": [eae("2024-03-15", "AAA_C60", -2, "Expiration", underlying_conid="AAA",
                              put_call="C")],
        "corporate_actions": [corporate_action(
            "2024-03-01", "AAA", 50, "AAA(US0000000001) SPLIT 2 FOR 1 (AAA, AAA INC)",
            type="FS")],
        "transfers": [transfer("2024-03-10", "AAA", 40, "OUT", transaction_id="T1"),
                      transfer("2024-03-10", "AAA", 40, "IN", account="U2", transaction_id="T2")],
        "marks": [{"account_id": "U1", "conid": "AAA", "date": t["trade_date"], "mark": 51}
                  for t in trades[:1]],
    }
