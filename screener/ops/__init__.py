"""Operating the worker: alerts (outbox, detectors, delivery), Prometheus metrics, status snapshot, logging.

May import: screener.review, screener.lists, screener.pipeline.runtime, screener.models, screener.db,
screener_base; never screener.daemon, screener.demo or screener.cli.
"""

__all__ = ["alert_rules", "alerts", "logging_setup", "metrics", "outbox_rules", "status"]
