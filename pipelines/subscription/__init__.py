"""The subscription pipeline: prepare → fraud → vat → charge → apply → invoice → notify.

``prepare`` decides (from the subscription and the plan) what the job charges and the state change that follows;
the payment pipeline's fraud (first charge only), VAT and charge stages run when there is something to charge;
``apply`` books the ledger, numbers the invoice and moves the subscription on in one transaction; ``invoice``
renders the PDF to S3.  Jobs with nothing to charge end at ``prepare``.  ``kind.py`` declares the job kind.
"""
