"""Operations that run beside the pipelines: scheduler, reconciler, outbox relay, fraud review, dead letters."""
