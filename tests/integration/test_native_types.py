"""Add ServiceStack Reference, as its users do it, against a running gateway over real HTTP:
``typescript-ref`` from the unchanged ``@servicestack/cli``, ``tsc --strict``, and
``@servicestack/client``; ``/types/mjs`` imported unchanged in node; the PyPI ``servicestack``
client with ``/types/python``. No worker is needed: a status lookup finds an accepted message.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.integration.nodetools import node_modules, run
from tests.integration.running import Gateway, gateway

pytestmark = pytest.mark.integration
__all__ = ["gateway"]  # the fixture


@pytest.fixture
def modules(tmp_path: Path) -> Path:
    """The npm tools, visible to node and tsc from tmp_path."""
    installed = node_modules()
    (tmp_path / "node_modules").symlink_to(installed, target_is_directory=True)
    return installed


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.text()


TS_CLIENT = """
import { JsonServiceClient } from "@servicestack/client";
import { GetSMPPSmsStatus, SendSMPPSmsRequest, SMPPMessage, SMPPMsgResponse,
         SMPPStatusResponse } from "./dtos";

declare const process: { argv: string[]; exit(code: number): never };  // no @types/node

async function main(base: string, key: string): Promise<void> {
    const client = new JsonServiceClient(base);
    client.bearerToken = key;
    // Typed by the DTOs' IReturn<...>: a wrong response type would not compile.
    const sent: SMPPMsgResponse = await client.post(new SendSMPPSmsRequest({
        Messages: [new SMPPMessage({ channel: "sim", to: "+27820000001", content: "from ts",
                                     clientMessageId: "ts-1" })] }));
    const id: string = sent.messages![0].apiMessageId!;
    const status: SMPPStatusResponse = await client.get(new GetSMPPSmsStatus({ apiMessageId: id }));
    console.log(JSON.stringify({ sent, status }));
}
main(process.argv[2], process.argv[3]).catch((e) => { console.error(e); process.exit(1); });
"""


async def test_typescript_ref_dtos_compile_strict_and_send_with_the_servicestack_client(
    gateway: Gateway, modules: Path, tmp_path: Path,
) -> None:
    out = await run("node", str(modules / "@servicestack/cli/bin/typescript-ref.js"),
                    gateway.base, cwd=tmp_path)
    assert "Saved to: dtos.ts" in out
    (tmp_path / "client.ts").write_text(TS_CLIENT)
    await run("node", str(modules / "typescript/bin/tsc"), "--strict", "--target", "es2022",
              "--module", "commonjs", "--moduleResolution", "node", "--outDir", "out",
              "dtos.ts", "client.ts", cwd=tmp_path)
    result = json.loads(await run("node", "out/client.js", gateway.base, gateway.key,
                                  cwd=tmp_path))
    (sent,) = result["sent"]["messages"]
    assert sent["accepted"] is True and sent["msg"]["clientMessageId"] == "ts-1"
    (status,) = result["status"]["messages"]
    assert status["apiMessageId"] == sent["apiMessageId"] and status["to"] == "27820000001"


async def test_typescript_ref_updates_a_reference_in_place_with_its_header_options(
    gateway: Gateway, modules: Path, tmp_path: Path,
) -> None:
    cli = str(modules / "@servicestack/cli/bin/typescript-ref.js")
    await run("node", cli, gateway.base, cwd=tmp_path)
    dtos = tmp_path / "dtos.ts"
    first = dtos.read_text()
    assert f"BaseUrl: {gateway.base}" in first and "export class GetApiKeys " in first
    # What a user does to narrow a reference: un-comment an option, then update.
    dtos.write_text(first.replace("//IncludeTypes: ", "IncludeTypes: SendSMPPSmsRequest.*"))
    out = await run("node", cli, "dtos.ts", cwd=tmp_path)
    assert "Updated: dtos.ts" in out
    updated = dtos.read_text()
    assert "\nIncludeTypes: SendSMPPSmsRequest.*\n" in updated
    assert "export class SendSMPPSmsRequest implements IReturn<SMPPMsgResponse>" in updated
    assert "export class SMPPMessage" in updated and "export class ResponseStatus" in updated
    assert "GetApiKeys" not in updated and "GetSMPPSmsStatus" not in updated


MJS_CLIENT = """
import { JsonServiceClient } from "@servicestack/client";
import { GetSMPPSmsStatus, SendSMPPSmsRequest, SMPPMessage } from "./dtos.mjs";

const [base, key] = process.argv.slice(2);
const client = new JsonServiceClient(base);
client.bearerToken = key;
const sent = await client.post(new SendSMPPSmsRequest({
    Messages: [new SMPPMessage({ channel: "sim", to: "+27820000002", content: "from mjs" })] }));
const apiMessageId = sent.messages[0].apiMessageId;
const status = await client.get(new GetSMPPSmsStatus({ apiMessageId }));
console.log(JSON.stringify({ sent, status }));
"""


async def test_types_mjs_imports_unchanged_in_node_and_sends_a_message(
    gateway: Gateway, modules: Path, tmp_path: Path,
) -> None:
    (tmp_path / "dtos.mjs").write_text(await _get(gateway.base + "/types/mjs"))
    (tmp_path / "main.mjs").write_text(MJS_CLIENT)
    result = json.loads(await run("node", "main.mjs", gateway.base, gateway.key, cwd=tmp_path))
    (sent,) = result["sent"]["messages"]
    assert sent["accepted"] is True and sent["to"] == "27820000002"
    assert result["status"]["messages"][0]["apiMessageId"] == sent["apiMessageId"]


PY_CLIENT = """
import json, sys
from servicestack import JsonServiceClient
from dtos import GetSMPPSmsStatus, SendSMPPSmsRequest, SMPPMessage, SMPPMsgResponse

client = JsonServiceClient(sys.argv[1])
client.bearer_token = sys.argv[2]
sent = client.post(SendSMPPSmsRequest(messages=[
    SMPPMessage(channel="sim", to="+27820000003", content="from python", client_message_id="p")]))
assert isinstance(sent, SMPPMsgResponse), type(sent)
status = client.get(GetSMPPSmsStatus(api_message_id=sent.messages[0].api_message_id))
print(json.dumps({"id": sent.messages[0].api_message_id, "accepted": sent.messages[0].accepted,
                  "cmid": sent.messages[0].msg.client_message_id,
                  "status": [m.api_message_id for m in status.messages]}))
"""


async def test_the_pypi_servicestack_client_sends_with_types_python(
    gateway: Gateway, tmp_path: Path,
) -> None:
    (tmp_path / "dtos.py").write_text(await _get(gateway.base + "/types/python"))
    (tmp_path / "main.py").write_text(PY_CLIENT)
    result = json.loads(await run(sys.executable, "main.py", gateway.base, gateway.key,
                                  cwd=tmp_path))
    assert result["accepted"] is True and result["cmid"] == "p"
    assert result["status"] == [result["id"]]
