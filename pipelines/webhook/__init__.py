"""The webhook pipeline: one ``handle`` stage dispatching Stripe events (``pipelines/webhook/handle.py``).

``kind.py`` declares the job kind; ``routes.py`` receives the events; ``janitor.py`` is the payment kind's
scheduler task that re-polls what a lost webhook would have told.
"""
