"""Invoices: gap-free numbering (:mod:`engine.invoices.numbering`), PDF rendering (:mod:`engine.invoices.pdf`) and
storage in the invoices bucket (:mod:`engine.invoices.store`)."""
