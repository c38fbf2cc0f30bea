"""The shipped deployment exposes the webhook and nothing else: Caddy forwards one path,
compose publishes only what the proxy needs, /metrics stays on its private listener."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def published_ports() -> dict[str, list[str]]:
    """compose.yaml's `ports:` entries by service (a small reader: no YAML library needed)."""
    ports: dict[str, list[str]] = {}
    service, in_ports = "", False
    for line in (ROOT / "compose.yaml").read_text().splitlines():
        if found := re.fullmatch(r"  ([\w-]+):.*", line):
            service, in_ports = found[1], False
        elif re.fullmatch(r"    ports:\s*", line):
            in_ports = True
        elif in_ports and (entry := re.fullmatch(r"\s+- \"?([^\"]+)\"?\s*", line)):
            ports.setdefault(service, []).append(entry[1])
        elif in_ports and not line.startswith("      "):
            in_ports = False
    return ports


def test_compose_publishes_on_all_interfaces_only_the_proxys_ports() -> None:
    ports = published_ports()
    assert ports["proxy"] == ["80:80", "443:443"]
    for service, entries in ports.items():
        if service != "proxy":
            assert all(entry.startswith("127.0.0.1:") for entry in entries), (service, entries)


def test_caddy_forwards_only_webhook_posts() -> None:
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in caddyfile.splitlines())
    matcher = re.search(r"@webhook \{(.*?)\n\t\}", code, re.S)
    assert matcher is not None
    assert "method POST" in matcher[1]
    assert "path {$BOT_WEBHOOK_PATH:/telegram/webhook}" in matcher[1]
    # The one reverse_proxy sits in `handle @webhook`; every other request gets Caddy's 404.
    assert code.count("reverse_proxy") == 1
    assert code.index("handle @webhook {") < code.index("reverse_proxy")
    assert re.search(r"handle \{\s*respond 404\s*\}", code)
    assert "/metrics" not in code
