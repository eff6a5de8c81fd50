"""SQLAlchemy 2 models of `ledger.positions` and `ledger.audit_log`, for applications.

`ledger.positions` is the local state a trading application reads (and reconciliation
corrects): one row per position episode of an (account, conid). An application maps it with
these classes instead of retyping the columns; the warehouse's migrations own the DDL
(`store.create_ledger_schema`), so use the models to query, not `create_all`:

    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session
    from qm_pipeline.lib.ledger.model import LedgerPosition

    with Session(create_engine(url)) as session:
        open_now = session.scalars(select(LedgerPosition).where(
            LedgerPosition.account_id == "U1234567", LedgerPosition.status == "OPEN")).all()

Change a status through `qm_pipeline.lib.ledger.audit.set_status` (it logs the change in
`ledger.audit_log`); a rebuild keeps statuses set by reconciliation or by hand.
Money is NUMERIC(38,18), read and written as `Decimal` (`ExactDecimal`); times are naive
(IB's clock for the ledger's own times, UTC for `updated_at` and `logged_at`). A test keeps
the columns here identical to the warehouse's.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Numeric, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

SCHEMA = "ledger"


class ExactDecimal(TypeDecorator):
    """NUMERIC(38,18) as `Decimal`, both ways, never through a binary float.

    SQLAlchemy's own `Numeric` formats results with "%.18f" on dialects that do not declare
    native decimals (duckdb_engine among them), which turns 20.02 into
    20.019999999999999574; the drivers (duckdb, psycopg) already exchange `Decimal`."""

    impl = Numeric(38, 18)
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: Any) -> Any:
            if isinstance(value, float):
                raise TypeError(f"binary float {value!r} where a Decimal is expected")
            return value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        def process(value: Any) -> Decimal | None:
            if value is None or isinstance(value, Decimal):
                return value
            if isinstance(value, float):
                raise TypeError(f"the driver returned binary float {value!r} for money")
            return Decimal(value)

        return process


Money = ExactDecimal()


class LedgerBase(DeclarativeBase):
    """Declarative base of the ledger's models (schema `ledger`)."""


class LedgerPosition(LedgerBase):
    """One position episode: from leaving zero to returning to zero."""

    __tablename__ = "positions"
    __table_args__ = {"schema": SCHEMA}  # noqa: RUF012 (SQLAlchemy's declarative attribute)

    episode_id: Mapped[str] = mapped_column(String, primary_key=True)  # account|conid|n
    account_id: Mapped[str] = mapped_column(String)
    conid: Mapped[str] = mapped_column(String)
    symbol: Mapped[str | None] = mapped_column(String)
    asset_category: Mapped[str | None] = mapped_column(String)
    currency: Mapped[str | None] = mapped_column(String)
    multiplier: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String)  # OPEN, CLOSED, CLOSED_EXTERNALLY, EXPIRED
    side: Mapped[str] = mapped_column(String)  # LONG or SHORT
    quantity: Mapped[Decimal] = mapped_column(Money)  # signed; 0 once closed
    max_quantity: Mapped[Decimal | None] = mapped_column(Money)
    cost_basis: Mapped[Decimal | None] = mapped_column(Money)  # of the lots still open
    cost_basis_base: Mapped[Decimal | None] = mapped_column(Money)
    average_cost: Mapped[Decimal | None] = mapped_column(Money)  # opening cost per unit
    opened_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    exit_reason: Mapped[str | None] = mapped_column(String)
    realized_pnl: Mapped[Decimal | None] = mapped_column(Money)
    realized_pnl_base: Mapped[Decimal | None] = mapped_column(Money)
    is_opening_balance: Mapped[bool | None] = mapped_column(Boolean)
    status_source: Mapped[str | None] = mapped_column(String)  # replay, reconciliation, manual
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_run_id: Mapped[str | None] = mapped_column(String)
    updated_cause: Mapped[str | None] = mapped_column(String)

    def __repr__(self) -> str:
        return (f"LedgerPosition({self.episode_id!r}, {self.status}, {self.side}, "
                f"quantity={self.quantity})")


class LedgerAuditEntry(LedgerBase):
    """One change to `ledger.positions`, with the row before and after (JSON text)."""

    __tablename__ = "audit_log"
    __table_args__ = {"schema": SCHEMA}  # noqa: RUF012 (SQLAlchemy's declarative attribute)

    audit_id: Mapped[str] = mapped_column(String, primary_key=True)
    logged_at: Mapped[dt.datetime] = mapped_column(DateTime)
    run_id: Mapped[str] = mapped_column(String)
    cause: Mapped[str] = mapped_column(String)  # replay, reconciliation, manual
    action: Mapped[str] = mapped_column(String)  # INSERT, UPDATE, DELETE, KEEP
    episode_id: Mapped[str] = mapped_column(String)
    account_id: Mapped[str | None] = mapped_column(String)
    conid: Mapped[str | None] = mapped_column(String)
    changed_columns: Mapped[str | None] = mapped_column(String)
    before_values: Mapped[str | None] = mapped_column(String)
    after_values: Mapped[str | None] = mapped_column(String)
    note: Mapped[str | None] = mapped_column(String)


class LedgerOrder(LedgerBase):
    """An order as the trading application recorded it (`ledger.orders`); reconciliation
    compares the pending ones with the broker's working orders. Columns:
    `qm_pipeline.lib.ledger.orders.ORDERS`."""

    __tablename__ = "orders"
    __table_args__ = {"schema": SCHEMA}  # noqa: RUF012 (SQLAlchemy's declarative attribute)

    order_key: Mapped[str] = mapped_column(String, primary_key=True)
    account_id: Mapped[str] = mapped_column(String)
    conid: Mapped[str] = mapped_column(String)
    symbol: Mapped[str | None] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)  # BUY or SELL
    quantity: Mapped[Decimal] = mapped_column(Money)
    order_type: Mapped[str | None] = mapped_column(String)
    limit_price: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String)  # IB's: PendingSubmit, Submitted, Filled...
    filled_quantity: Mapped[Decimal | None] = mapped_column(Money)
    broker_order_id: Mapped[int | None] = mapped_column(BigInteger)
    perm_id: Mapped[int | None] = mapped_column(BigInteger)
    client_id: Mapped[int | None] = mapped_column(BigInteger)
    order_ref: Mapped[str | None] = mapped_column(String)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    source: Mapped[str | None] = mapped_column(String)  # application, import, reconciliation
    note: Mapped[str | None] = mapped_column(String)
