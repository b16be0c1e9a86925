"""The /docs page: Swagger UI from the installed package over /openapi.json, loaded in headless
Chromium, with no request leaving 127.0.0.1; and the document's examples and security."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from tests.integration.running import Gateway, gateway
from tests.integration.test_status_page import DevTools, browser

pytestmark = pytest.mark.integration
__all__ = ["browser", "gateway"]  # the fixtures

SEND = "/communication/message/smpp/sms"


async def _until(devtools: DevTools, condition: str) -> Any:
    """The value of ``condition`` once truthy, checked after each change to the page."""
    script = f"""new Promise((resolve) => {{
        const check = () => {{ const v = ({condition}); if (v) {{ obs.disconnect();
                               resolve(v); }} }};
        const obs = new MutationObserver(check);
        obs.observe(document.body, {{childList: true, subtree: true, attributes: true}});
        check(); }})"""
    got = await devtools.call("Runtime.evaluate", expression=script, awaitPromise=True,
                              returnByValue=True)
    assert "exceptionDetails" not in got, got
    return got["result"]["value"]


async def test_the_docs_page_shows_the_send_schema_with_nothing_leaving_loopback(
    gateway: Gateway, browser: DevTools,
) -> None:
    requested: list[str] = []
    await browser.call("Page.enable")
    await browser.call("Network.enable")
    await browser.call("Page.navigate", url=gateway.base + "/docs")
    # Record every request the page makes, until the page has loaded.
    async with asyncio.timeout(60):
        while True:
            msg = await browser._ws.receive_json()
            if msg.get("method") == "Network.requestWillBeSent":
                requested.append(msg["params"]["request"]["url"])
            if msg.get("method") == "Page.loadEventFired":
                break
    await _until(browser, f"""[...document.querySelectorAll('.opblock-post')].some(
        (e) => e.querySelector('.opblock-summary-path')?.dataset.path === '{SEND}')""")
    await browser.call("Runtime.evaluate", expression=f"""[...document.querySelectorAll(
        '.opblock-post')].find((e) => e.querySelector('.opblock-summary-path').dataset.path
        === '{SEND}').querySelector('.opblock-summary-control').click(), true""")
    body = await _until(browser, """document.querySelector('.opblock.is-open .body-param__example,'
        + ' .opblock.is-open .microlight')?.textContent""")
    assert '"Messages"' in body and '"clientMessageId": "abc-1"' in body
    await browser.call("Runtime.evaluate", expression="""[...document.querySelectorAll(
        '.opblock.is-open .tablinks button, .opblock.is-open .tab button')].find(
        (b) => b.textContent.trim() === 'Schema').click(), true""")
    schema = await _until(browser, """(t => t.includes('SMPPMessage') && t)(
        document.querySelector('.opblock.is-open .model-box')?.textContent || '')""")
    assert "Messages" in schema
    # Requests the page made after loading (XHRs for openapi.json) are recorded too.
    logs = await browser.call("Runtime.evaluate", returnByValue=True, expression=(
        "performance.getEntriesByType('resource').map((e) => e.name)"))
    requested += logs["result"]["value"]
    assert any(u.endswith("/openapi.json") for u in requested)
    assert requested and all(u.startswith(gateway.base + "/") for u in requested), requested


async def test_the_docs_assets_come_from_the_package_and_the_document_has_examples(
    gateway: Gateway,
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(gateway.base + "/docs") as resp:
            page = await resp.text()
            assert "connect-src 'self'" in resp.headers["Content-Security-Policy"]
        assert "/admin/status" in page and "//" not in page.replace("://", "")
        async with http.get(gateway.base + "/admin/status") as resp:
            assert 'href="/docs"' in await resp.text()  # and back
        async with http.get(gateway.base + "/docs/swagger-ui-bundle.js") as resp:
            assert resp.status == 200 and "SwaggerUIBundle" in await resp.text()
        async with http.get(gateway.base + "/docs/..%2Fcore.py") as resp:
            assert resp.status == 404
        async with http.get(gateway.base + "/openapi.json") as resp:
            doc = await resp.json()
    assert doc["security"] == [{"bearer": []}, {"basic": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    content = doc["paths"][SEND]["post"]["requestBody"]["content"]
    assert content["application/json"]["example"]["Messages"][0]["to"] == "+27820000000"
    assert content["application/xml"]["example"].startswith("<?xml")
