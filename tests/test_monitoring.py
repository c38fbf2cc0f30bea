"""deploy/: the Prometheus rules and config pass promtool, the dashboard names only real metrics."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.config import Settings
from bot.metrics import Metrics
from tests.conftest import BotFactory, RunningBot
from tests.redis_server import RedisServer

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "transcribot.json"
# What Prometheus itself adds to every scrape.
PROMETHEUS_OWN = frozenset({"up"})
_METRIC = re.compile(r"\b(transcribot_[a-z0-9_]+|up)\b(?!\s*\()")


def exported() -> set[str]:
    """Every series name the bot's registry can expose (counters as _total, histograms split)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names |= {f"{family.name}_total", f"{family.name}_created"}
        elif family.type == "histogram":
            names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count", "created")}
        else:
            names.add(family.name)
    return names


def names_in(text: str) -> set[str]:
    return set(_METRIC.findall(text))


def promtool() -> str:
    beside = Path(sys.executable).parent / "promtool"
    found = str(beside) if beside.exists() else shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (make test unpacks it from Debian's prometheus)")
    return found


def run_promtool(*args: str) -> None:
    done = subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_pass_promtool_check() -> None:
    run_promtool("check", "rules", str(RULES))


def test_the_alert_rules_fire_on_their_own_series_and_not_on_a_healthy_bot() -> None:
    run_promtool("test", "rules", str(RULES.parent / "alerts_test.yml"))


def test_the_prometheus_config_passes_promtool_check() -> None:
    run_promtool("check", "config", str(RULES.parent / "prometheus.yml"))


def test_the_rules_cover_what_an_operator_must_hear_of() -> None:
    text = RULES.read_text()
    for alert in (
        "TranscribotQueueGrowing",
        "TranscribotFailureRatio",
        "TranscribotUpstreamSlow",
        "TranscribotTelegram429",
        "TranscribotNoJobFinished",
        "TranscribotStoreDown",
        "TranscribotDown",
    ):
        assert f"alert: {alert}\n" in text


def test_the_rules_name_only_metrics_the_bot_exports() -> None:
    unknown = names_in(RULES.read_text()) - exported() - PROMETHEUS_OWN
    assert not unknown


def test_the_dashboard_loads_and_names_only_metrics_the_bot_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    used = set().union(*(names_in(e) for e in exprs))
    assert not used - exported() - PROMETHEUS_OWN
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("outcome", "audio minutes by model", "queue", "latency", "telegram", "cost"):
        assert topic in titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_a_name_the_bot_does_not_export_is_caught() -> None:
    assert names_in("rate(transcribot_jobs_totl[5m])") - exported() == {"transcribot_jobs_totl"}


async def scrape(bot: RunningBot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await bot.http.get(bot.metrics_url)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


async def test_the_store_and_the_cost_are_exported_for_the_dashboard(bot: RunningBot) -> None:
    samples = await scrape(bot)
    assert samples[("transcribot_store_up", ())] == 1
    cost = "transcribot_audio_cost_dollars_total"
    assert samples[(cost, (("model", "gpt-4o-mini-transcribe"),))] == 0


def test_the_monitoring_profile_mounts_files_that_exist() -> None:
    root = DEPLOY.parent
    compose = yaml.safe_load((root / "compose.yaml").read_text())
    services = compose["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (root / source).exists(), source
    mounted = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for needed in ("alerts.yml", "prometheus.yml", "transcribot.json", "provisioning"):
        assert needed in mounted
    datasource = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uids = {d["uid"] for d in datasource["datasources"]}
    dashboard = json.loads(DASHBOARD.read_text())
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} <= uids


def test_prometheus_reaches_every_bot_on_its_metrics_listener() -> None:
    compose = yaml.safe_load((DEPLOY.parent / "compose.yaml").read_text())
    config = yaml.safe_load((RULES.parent / "prometheus.yml").read_text())
    [sd] = config["scrape_configs"][0]["dns_sd_configs"]
    assert sd["port"] == Settings.model_fields["metrics_port"].default
    for name in sd["names"]:
        # Loopback (the default) would answer nothing outside the bot's own container.
        assert compose["services"][name]["environment"]["METRICS_HOST"] == "0.0.0.0", name


async def test_the_store_shows_down_while_redis_is_gone(
    bot_factory: BotFactory, tmp_path: Path
) -> None:
    """What TranscribotStoreDown fires on."""
    server = RedisServer(tmp_path / "redis", databases=1)
    server.start()
    try:
        async with bot_factory(database_url=server.url()) as bot:
            assert (await scrape(bot))[("transcribot_store_up", ())] == 1
            server.kill()
            await asyncio.sleep(1.1)  # past the second a queue count is kept
            assert (await scrape(bot))[("transcribot_store_up", ())] == 0
    finally:
        server.kill()
