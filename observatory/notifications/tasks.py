from celery import shared_task

from observatory.notifications.services import deliveries_dispatch, delivery_attempt


@shared_task(name="observatory.notifications.tasks.notification_deliver")
def notification_deliver(delivery_id: int) -> str | None:
    # Safe to run twice: the attempt claims the delivery, and a second run finds it taken or sent.
    return delivery_attempt(delivery_id=delivery_id)


@shared_task(name="observatory.notifications.tasks.notifications_dispatch")
def notifications_dispatch() -> dict:
    return {"queued": len(deliveries_dispatch())}
