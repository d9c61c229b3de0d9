"""jalon's billing core: money, contracts, invoices, payments, audit and persistence.

The core knows no HTTP, no Flask, no requests and no PM tool: plugins speak to it
through the small event types of :mod:`jalon.core.events`.
"""
