"""Reruns started from the console: one import in the request, a filter's worth in a thread.

Both go the way `dmp-ingest imports rerun` and POST /admin/imports/rerun go: pipelines/rerun
decides what is reopened (and checks the archived bytes), then the rows are claimed and
processed in batches with the API's rerun context. A bulk rerun runs in a background thread
so the page can answer at once; its progress (processed / to process, outcomes so far) is
kept in memory for the console's small JSON endpoint and its no-JS page. The rerun itself is
in the audit trail (one event per request, with the ids), beside assign/edit/discard.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field

from api.app import ApiState
from pipelines import rerun
from pipelines.audit import Actor
from pipelines.ledger import claim_batch
from pipelines.process import CODE_VERSION
from pipelines.rerun import reopen_checked
from pipelines.resilient import process_or_defer

log = logging.getLogger("dmp.console")
KEEP_SECONDS = 3600  # finished jobs are forgotten after an hour
BULK_BATCH = 50  # small batches: the progress bar moves


@dataclass
class Job:
    id: str
    actor: str
    requested: int
    total: int = 0
    done: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    finished: bool = False
    error: str | None = None
    started: float = field(default_factory=time.time)

    def as_dict(self) -> dict:
        return {"id": self.id, "requested": self.requested, "total": self.total,
                "done": self.done, "outcomes": self.outcomes, "finished": self.finished,
                "error": self.error,
                "percent": 100 if self.finished and not self.total
                else int(100 * self.done / self.total) if self.total else 0}


_jobs: dict[str, Job] = {}
_lock = threading.Lock()


def audit_rerun(api: ApiState, actor: Actor, ids: list[int], reason: str | None) -> None:
    """The console's rerun in the audit trail, as the CLI's and the admin API's are."""
    rerun.audit_rerun(api.ctx.engine, actor, ids, reason)


def run(api: ApiState, ids: list[int], job: Job | None = None) -> dict:
    """Reopen ``ids`` and process them now; the rerun's summary with ``outcomes``."""
    ctx = api.ctx
    plan = reopen_checked(ctx.engine, ctx.archive, ids, code_version=CODE_VERSION,
                          settings=ctx.settings)
    result = {"requested": len(ids), **plan.summary(), "outcomes": {}}
    todo = plan.to_process
    if job is not None:
        job.total, job.summary = len(todo), plan.summary()
    worker = api.rerun_ctx
    size = BULK_BATCH if job is not None else ctx.settings.batch_size
    for i in range(0, len(todo), size):
        chunk = todo[i:i + size]
        claimed = claim_batch(ctx.engine, limit=len(chunk), worker=worker.worker, ids=chunk,
                              lease_seconds=ctx.settings.lease_seconds)
        for status, n in process_or_defer(worker, claimed).items():
            result["outcomes"][status] = result["outcomes"].get(status, 0) + n
        if job is not None:
            job.done += len(chunk)
            job.outcomes = dict(result["outcomes"])
    # the last word is the ledger's: a service worker may have taken some rows first
    result.update(rerun.rerun_outcomes(ctx.engine, todo))
    if job is not None:
        job.outcomes = dict(result["outcomes"])
    return result


def start_bulk(api: ApiState, ids: list[int], actor: Actor) -> Job:
    """A bulk rerun in a background thread; its Job at once."""
    job = Job(secrets.token_urlsafe(12), actor.name, len(ids))
    with _lock:
        cutoff = time.time() - KEEP_SECONDS
        for key in [k for k, j in _jobs.items() if j.finished and j.started < cutoff]:
            del _jobs[key]
        _jobs[job.id] = job

    def work() -> None:
        try:
            run(api, ids, job)
        except Exception as exc:  # shown on the job's page; the rows stay reopened
            job.error = type(exc).__name__
            log.error("bulk rerun %s failed (%s)", job.id, type(exc).__name__)
            log.debug("bulk rerun failure", exc_info=True)
        finally:
            job.finished = True
            api.wake()  # anything left received is for the service's workers

    threading.Thread(target=work, name=f"console-rerun-{job.id}", daemon=True).start()
    return job


def get(job_id: str) -> Job | None:
    with _lock:
        return _jobs.get(job_id)
