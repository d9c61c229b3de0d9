"""The outbox: messages written with the billing change, the dispatcher that delivers them, what they say."""
