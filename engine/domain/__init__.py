"""Pure domain logic: money, VAT, fraud rules, the ledger's transactions.  No I/O, no database imports."""
