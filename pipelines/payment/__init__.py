"""The payment pipeline: fraud → vat → charge → ledger → notify, one small module per stage.

``kind.py`` declares the job kind (queue, request, stage list, runner, routes, scheduler task).
"""
