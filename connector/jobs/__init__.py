"""Scheduled jobs and the background loops (worker, dispatcher, scheduler) of a process."""
