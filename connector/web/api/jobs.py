"""Scheduled jobs: what each did last, its error, and when it runs next.

Any token reads them (admin and finance watch the jobs alike); nothing here
writes. The jobs listed are those the scheduler runs: the connector's own and
every plugin's (``jalon_scheduler_jobs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from flask import current_app
from flask.views import MethodView
from marshmallow import fields

from jalon.core.types import utcnow

from jalon.connector.jobs.overview import JobStatus, find_job, first_line, job_statuses, runs_of
from jalon.connector.jobs.scheduler import collect_jobs
from jalon.connector.plugin.types import JobSpec
from jalon.connector.web.api import Blueprint
from jalon.connector.web.api.context import db, protect
from jalon.connector.web.api.fields import PageArgs, Schema, page_of, paginate

blp = Blueprint("jobs", __name__, url_prefix="/jobs",
                description="Scheduled jobs: last run, status, error, next tick; a job's recent runs")
protect(blp, write_scopes=("admin",))

RUN_STATUSES = ("running", "ok", "failed")


class JobRunSummaryOut(Schema):
    tick = fields.DateTime(metadata={"description": "The start of the interval the run was for"})
    status = fields.String(metadata={"enum": list(RUN_STATUSES)})
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    error = fields.Function(lambda run: first_line(run.error), allow_none=True,
                            metadata={"type": "string", "nullable": True,
                                      "description": "The first line of the error of a failed run"})


class JobRunOut(JobRunSummaryOut):
    id = fields.Integer()
    owner = fields.String(metadata={"description": "The process that ran it (host:pid:...)"})
    error = fields.String(allow_none=True, metadata={"description": "The error of a failed run, as recorded"})
    result = fields.Function(lambda run: _no_floats(run.result or {}),
                             metadata={"type": "object", "description": "What the run reported (numbers "
                                       "that are not integers are written as strings)"})


class JobOut(Schema):
    name = fields.String()
    description = fields.String()
    interval = fields.Integer(attribute="interval_seconds", metadata={"description": "Seconds between ticks"})
    last_run = fields.Nested(JobRunSummaryOut, allow_none=True,
                             metadata={"description": "The run of the latest tick; null if it never ran"})
    last_success = fields.Nested(JobRunSummaryOut, allow_none=True,
                                 metadata={"description": "The latest run that ended ok; null if none did"})
    next_tick = fields.DateTime(metadata={"description": "When the scheduler fires it next"})


JobPage = page_of(JobOut, "JobPage")
JobRunPage = page_of(JobRunOut, "JobRunPage")


class JobDetailOut(JobOut):
    runs = fields.Nested(JobRunPage, metadata={"description": "Its runs, latest tick first (?page=&page_size=)"})


def _statuses(jobs: Sequence[JobSpec]) -> list[JobStatus]:
    return job_statuses(db(), jobs, utcnow())


@blp.route("")
class Jobs(MethodView):
    @blp.arguments(PageArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, JobPage)
    def get(self, args):  # type: ignore[no-untyped-def]
        """List the scheduled jobs: last run, last success, next tick"""
        statuses = _statuses(collect_jobs(current_app.extensions["jalon"]))
        page, size = args["page"], args["page_size"]
        return {"items": statuses[(page - 1) * size:page * size], "page": page, "page_size": size,
                "total": len(statuses)}


@blp.route("/<name>")
class JobByName(MethodView):
    @blp.arguments(PageArgs, location="query", unknown=ma.RAISE)
    @blp.response(200, JobDetailOut)
    @blp.alt_response(404, response="NOT_FOUND")  # job_not_found
    def get(self, args, name):  # type: ignore[no-untyped-def]
        """Get a scheduled job with its runs, latest first (paginated)"""
        job = find_job(collect_jobs(current_app.extensions["jalon"]), name)
        [status] = _statuses([job])
        return {"name": status.name, "description": status.description,
                "interval_seconds": status.interval_seconds, "last_run": status.last_run,
                "last_success": status.last_success, "next_tick": status.next_tick,
                "runs": paginate(db(), runs_of(name), args)}


def _no_floats(value: Any) -> Any:
    """A run's result as JSON without floats: a job may have reported one."""
    if isinstance(value, dict):
        return {key: _no_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_no_floats(item) for item in value]
    if isinstance(value, float):
        return repr(value)
    return value

