"""A thin driver around the official Python MCP SDK client (PyPI `mcp`), run
by kastell's conformance tests.

It reads a plan (JSON) from the file named by its first argument, connects
over stdio or Streamable HTTP (handshake era with mode "legacy", or letting
the SDK negotiate with "auto"), lists the tools, resources and prompts, makes
the planned calls (answering elicitation requests as the plan says, as a
user would, and cancelling a call with "cancelWhen" at the progress
message naming it) and prints one JSON report on stdout. Whatever the SDK
rejects is reported as an error string: the Rust test decides what passes.
"""

import asyncio
import json
import sys

import anyio

from mcp import Client, types
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def dump(model):
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def describe(err):
    inner = getattr(err, "exceptions", None)
    if inner:
        return f"{type(err).__name__}: " + "; ".join(describe(e) for e in inner)
    return f"{type(err).__name__}: {err}"


async def run(plan):
    report = {"sdk": "python", "calls": [], "logs": []}
    # plan["handshakeVersion"]: the version the legacy handshake offers
    # (the SDK offers its newest, 2025-11-25, otherwise), to reach every
    # version a server accepts.
    if plan.get("handshakeVersion"):
        import mcp.client.session as client_session

        client_session.LATEST_HANDSHAKE_VERSION = plan["handshakeVersion"]
    if plan["transport"] == "http":
        http = create_mcp_http_client(headers=plan.get("headers") or {})
        server = streamable_http_client(plan["url"], http_client=http)
    else:
        server = StdioServerParameters(
            command=plan["command"], args=plan.get("args") or [], env=plan.get("env") or {}
        )

    async def on_log(params):
        report["logs"].append(dump(params))

    # plan["elicit"]: how the "user" answers elicitation requests, e.g.
    # {"action": "accept", "content": {"confirm": true}, "delaySeconds": 0}.
    # Every question is recorded in report["elicitations"].
    elicit = plan.get("elicit")
    report["elicitations"] = []

    async def on_elicit(context, params):
        report["elicitations"].append(dump(params))
        if elicit.get("delaySeconds"):
            await asyncio.sleep(elicit["delaySeconds"])
        return types.ElicitResult(action=elicit["action"], content=elicit.get("content"))

    try:
        async with Client(
            server,
            mode=plan.get("mode", "legacy"),
            logging_callback=on_log,
            elicitation_callback=on_elicit if elicit else None,
            log_level=plan.get("logLevel"),
            read_timeout_seconds=120,
        ) as client:
            report["protocolVersion"] = client.protocol_version
            try:
                report["tools"] = [dump(t) for t in (await client.list_tools()).tools]
            except Exception as err:  # noqa: BLE001 - reported to the test
                report["toolsError"] = describe(err)
            if plan.get("resources"):
                try:
                    resources = (await client.list_resources()).resources
                    report["resources"] = [dump(r) for r in resources]
                    report["resourceReads"] = [
                        dump(await client.read_resource(str(r.uri))) for r in resources
                    ]
                except Exception as err:  # noqa: BLE001
                    report["resourcesError"] = describe(err)
            if plan.get("prompts"):
                try:
                    report["prompts"] = [dump(p) for p in (await client.list_prompts()).prompts]
                except Exception as err:  # noqa: BLE001
                    report["promptsError"] = describe(err)
            if plan.get("setLogLevel"):
                await client.set_logging_level(plan["setLogLevel"])
            for call in plan.get("calls") or []:
                progress = []
                # call["cancelWhen"]: the call is cancelled (its scope, so
                # the SDK sends notifications/cancelled) at the first
                # progress message containing this text.
                scope = anyio.CancelScope()
                cancel_when = call.get("cancelWhen")

                async def on_progress(value, total, message, progress=progress, scope=scope):
                    progress.append({"progress": value, "total": total, "message": message})
                    if cancel_when and cancel_when in (message or ""):
                        scope.cancel()

                # An argument {"$from": N, "field": F} is call N's
                # structuredContent[F] (a plan token or an id handed to a
                # later call), {"$from": N, "pointer": P} the value at JSON
                # pointer P (e.g. "/snapshot/id") in it, with one character
                # changed when "alter" is set.
                arguments = dict(call.get("arguments") or {})
                for key, value in list(arguments.items()):
                    if isinstance(value, dict) and "$from" in value:
                        earlier = report["calls"][value["$from"]].get("result") or {}
                        found = earlier.get("structuredContent")
                        path = value["pointer"].split("/")[1:] if "pointer" in value else [value["field"]]
                        for part in path:
                            found = found.get(part) if isinstance(found, dict) else None
                        if found and value.get("alter"):
                            # One character changed inside the sealed part.
                            flip = "A" if found[-10] != "A" else "B"
                            found = found[:-10] + flip + found[-9:]
                        arguments[key] = found
                if call.get("sleepBefore"):
                    await asyncio.sleep(call["sleepBefore"])
                wants_progress = call.get("progress") or cancel_when
                try:
                    result = None
                    with scope:
                        result = await client.call_tool(
                            call["name"],
                            arguments,
                            progress_callback=on_progress if wants_progress else None,
                        )
                    if scope.cancelled_caught:
                        report["calls"].append({"cancelled": True, "progress": progress})
                    else:
                        report["calls"].append({"result": dump(result), "progress": progress})
                except Exception as err:  # noqa: BLE001
                    report["calls"].append({"error": describe(err), "progress": progress})
    except BaseException as err:  # noqa: BLE001 - includes exception groups from anyio
        report["connectError"] = describe(err)
    return report


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        plan = json.load(f)
    report = asyncio.run(run(plan))
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
