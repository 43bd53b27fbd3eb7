"""The dead_letters projection: wa.deadletter -> one ``dead_letters`` row per dead letter id,
open, retried or resolved."""
