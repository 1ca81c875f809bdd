"""/api/v1/campaigns: list, create, launch, pause, resume, cancel, and the funnel figures."""

from __future__ import annotations

from redis.exceptions import RedisError

from app.blueprints.api import api_blueprint, body, endpoint, respond
from app.services.analytics import campaign_report
from app.services.api import campaigns
from app.services.api.render import campaign_out
from app.services.api.schemas import CampaignIn, CampaignList, CampaignMetrics, CampaignOut, FunnelStep, ProblemOut
from jobs.campaigns import enqueue_send_batch, schedule_start, unschedule_start
from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks

bp = api_blueprint("api_campaigns", __name__)
READ, WRITE, TAG = "campaigns:read", "campaigns:write", "Campaigns"
ANSWERS = {200: CampaignOut, 404: ProblemOut, 409: ProblemOut}


@bp.get("/campaigns")
@endpoint(READ, {200: CampaignList}, tag=TAG)
def list_campaigns():
    """Every campaign, newest first (runs of a repeating campaign are campaigns of their own)."""
    return respond(CampaignList(data=[campaign_out(row) for row in campaigns.list_campaigns()]))


@bp.post("/campaigns")
@endpoint(WRITE, {201: CampaignOut}, body=CampaignIn, tag=TAG)
def create_campaign():
    """Create a draft: template, audience rules, variables, schedule. Launch it with POST …/launch."""
    return respond(campaign_out(campaigns.create(body(CampaignIn), None)), 201)


@bp.get("/campaigns/<int:campaign_id>")
@endpoint(READ, {200: CampaignOut, 404: ProblemOut}, tag=TAG)
def get_campaign(campaign_id: int):
    """One campaign and its counters."""
    return respond(campaign_out(campaigns.get_campaign(campaign_id)))


@bp.post("/campaigns/<int:campaign_id>/launch")
@endpoint(WRITE, ANSWERS, tag=TAG)
def launch(campaign_id: int):
    """Send now, or schedule it when it has a schedule."""
    run = campaigns.launch(campaign_id, None)
    _queue(lambda: enqueue_send_batch(run.run_id) if run.run_id else schedule_start(campaign_id, run.next_at))
    return respond(campaign_out(campaigns.get_campaign(campaign_id)))


@bp.post("/campaigns/<int:campaign_id>/<any(pause, resume, cancel):action>")
@endpoint(WRITE, ANSWERS, tag=TAG)
def control(campaign_id: int, action: str):
    """Pause, resume or cancel: takes effect within one batch."""
    campaign = campaigns.control(campaign_id, action, None)
    _queue(lambda: enqueue_send_batch(campaign_id) if action == "resume" else unschedule_start(campaign_id))
    enqueue_deliver_outbound_webhooks()  # a cancel's campaign.finished event, at once
    return respond(campaign_out(campaign))


@bp.get("/campaigns/<int:campaign_id>/metrics")
@endpoint(READ, {200: CampaignMetrics, 404: ProblemOut}, tag=TAG)
def metrics(campaign_id: int):
    """The funnel: targeted, sent, delivered, read, replied, with failed and skipped aside."""
    report = campaign_report.campaign_analytics(campaign_id)
    return respond(CampaignMetrics(
        campaign_id=campaign_id, status=report.campaign.status,
        funnel=[FunnelStep(key=s.key, label=s.label, count=s.count, of_targeted=s.of_targeted,
                           of_previous=s.of_previous) for s in report.steps],
        delivery_rate=report.delivery_rate, read_rate=report.read_rate, reply_rate=report.reply_rate,
        failure_rate=report.failure_rate))


def _queue(work) -> None:
    """Queue the follow-up work; if Redis is down the sweeper rebuilds it from the database."""
    try:
        work()
    except RedisError:
        pass
