"""The procrastinate tasks. Each one is a thin call into a service function.

Task names are the explicit constants of ``cleanit.adapters.jobs``; retries use exponential
back-off (2, 4, 8, ... seconds; about 17 minutes over 10 attempts). A job whose retries all
fail is picked up again by the periodic sweep, so no message or platform action is lost.
"""

from __future__ import annotations

from typing import Any

import procrastinate

from cleanit.adapters import jobs
from cleanit.services import (
    exchanges,
    maintenance,
    matching,
    matching_batches,
    orders,
    outbox,
    platform,
    tdb,
)
from cleanit.services.context import Context
from cleanit.settings import Settings

RETRY = procrastinate.RetryStrategy(max_attempts=10, exponential_wait=2)


def register(app: procrastinate.App, ctx: Context, settings: Settings | None = None) -> None:
    """Every task, bound to ``ctx``; ``settings`` (the runtime's, else read from the
    environment once, here) configures the calls to the Transparency Database."""
    config = settings or Settings()

    @app.task(name=jobs.DELIVER_MESSAGE, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def deliver_message(message_id: int) -> str:
        return outbox.deliver_message(ctx, message_id)

    @app.task(name=jobs.SEND_PLATFORM_ACTION, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def send_platform_action(platform_action_id: int) -> str:
        return platform.send_platform_action(ctx, platform_action_id)

    # Removal orders: a reminder at its due time (idempotent: each fires once whoever runs
    # it), its webhook, and every minute a sweep that catches anything a lost job missed.
    @app.task(name=jobs.ESCALATE_ORDER, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def escalate_order(order_id: int) -> int:
        return orders.escalate_due(ctx, order_id)

    @app.task(name=jobs.SEND_ORDER_ESCALATION, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def send_order_escalation(escalation_id: int) -> str:
        return orders.send_escalation_webhook(ctx, escalation_id)

    @app.periodic(cron="* * * * *", periodic_id="orders")
    @app.task(name=jobs.ORDERS_SWEEP, queue=jobs.DEFAULT_QUEUE, queueing_lock=jobs.ORDERS_SWEEP)
    def orders_sweep(timestamp: int) -> dict[str, int]:
        report = orders.sweep(ctx)
        return {"escalations": report.escalations, "holds_released": report.holds_released}

    @app.task(name=jobs.REMATCH, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def rematch(bank_id: int, first_entry_id: int, last_entry_id: int) -> dict[str, int]:
        report = matching.rematch(ctx, bank_id, first_entry_id, last_entry_id)
        return {"contents": report.contents, "cases": report.cases}

    @app.task(name=jobs.SYNC_EXCHANGE, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def sync_exchange(exchange_id: int) -> dict[str, int]:
        report = exchanges.sync_exchange(ctx, None, exchange_id)
        return {"imported": report.imported, "errors": len(report.errors)}

    @app.task(name=jobs.SEND_EXCHANGE_OPINION, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def send_exchange_opinion(opinion_id: int) -> str:
        return exchanges.send_opinion(ctx, opinion_id)

    @app.task(name=jobs.MATCH_BATCH_ITEM, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def match_batch_item(item_id: int) -> str:
        return matching_batches.match_batch_item(ctx, item_id)

    # DSA Transparency Database: a provider's queued statements, 100 per call.
    @app.task(name=jobs.SUBMIT_TDB, retry=RETRY, queue=jobs.DEFAULT_QUEUE)
    def submit_tdb(provider_id: int) -> dict[str, int]:
        report = tdb.submit_configured(ctx, provider_id, config)
        return {"submitted": report.submitted, "rejected": report.rejected}

    @app.periodic(cron="*/5 * * * *", periodic_id="sweep")
    @app.task(name=jobs.SWEEP, queue=jobs.DEFAULT_QUEUE, queueing_lock=jobs.SWEEP)
    def sweep(timestamp: int) -> dict[str, Any]:
        report = maintenance.sweep(ctx)
        return {"erased": report.notifiers_erased, "redeferred": report.jobs_redeferred}
