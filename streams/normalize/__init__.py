"""normalize stage: wa.raw deliveries -> wa.messages events.

``logic.normalise`` is the pure function (unit-tested without Kafka); the agent that
consumes wa.raw, publishes the events and dead-letters ``UnparseableDelivery`` wraps it.
"""
