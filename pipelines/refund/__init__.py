"""The refund pipeline: amount → refund → ledger → notify, one small module per stage.

The runner (:class:`pipelines.refund.holds.RefundRunner`) holds a refund whose payment has not settled before any
stage runs; see ``docs/refunds.md``.  ``kind.py`` declares the job kind.
"""
