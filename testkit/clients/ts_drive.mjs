// What kastell's conformance tests do through either line of the official
// TypeScript MCP SDK: ts_client.mjs (v1, `@modelcontextprotocol/sdk`) and
// ts2_client.mjs (v2, `@modelcontextprotocol/client`) hand `drive` the
// parts in which the two differ, and it does the rest.
//
// It reads a plan (JSON) from the file named by the first argument,
// connects over stdio or Streamable HTTP, lists the tools, resources and
// prompts, makes the planned calls and prints one JSON report on stdout.
// An argument {"$from": N, "field": F} is call N's structuredContent[F]
// (an id an earlier call returned, handed to a later one), and
// {"$from": N, "pointer": P} the value at JSON pointer P (e.g.
// "/snapshot/id") in it, as in py_client.py. A call with "cancelWhen"
// is cancelled through the SDK (its abort signal) at the first progress
// message containing that text; its report says "cancelled": true.
// Everything the SDK rejects (a tools/list it cannot parse, a result that
// does not match its tool's output schema) is reported as an error string,
// never swallowed: the Rust test decides what passes.
import { readFileSync } from "node:fs";

function describe(err) {
  return String(err && err.message ? err.message : err);
}

// The call's arguments with each {"$from": N, ...} replaced by what call N
// returned there (undefined if it returned none).
function resolve(args, calls) {
  const resolved = { ...(args || {}) };
  for (const [key, value] of Object.entries(resolved)) {
    if (value && typeof value === "object" && "$from" in value) {
      const earlier = (calls[value.$from] || {}).result || {};
      const path = value.pointer ? value.pointer.split("/").slice(1) : [value.field];
      resolved[key] = path.reduce((at, part) => (at == null ? at : at[part]), earlier.structuredContent);
    }
  }
  return resolved;
}

// `sdk` names the SDK line and how to use it:
//   name                           the report's `sdk`
//   clientName                     the name it gives the server
//   Client, StdioClientTransport, StreamableHTTPClientTransport
//   clientOptions                  the Client constructor's second argument
//   callTool(client, params, options)
//   protocolVersion(client)        what the connection negotiated, if the
//                                  SDK says (v1 does not)
export async function drive(sdk) {
  const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
  const report = { sdk: sdk.name, calls: [] };

  const transport =
    plan.transport === "http"
      ? new sdk.StreamableHTTPClientTransport(new URL(plan.url), {
          requestInit: { headers: plan.headers || {} },
        })
      : new sdk.StdioClientTransport({
          command: plan.command,
          args: plan.args || [],
          env: plan.env || {},
          stderr: "inherit",
        });

  const client = new sdk.Client(
    { name: sdk.clientName, version: "1.0.0" },
    sdk.clientOptions,
  );
  try {
    await client.connect(transport);
    report.serverVersion = client.getServerVersion();
    report.capabilities = client.getServerCapabilities();
    const version = sdk.protocolVersion(client);
    if (version !== undefined) {
      report.protocolVersion = version;
    }
    try {
      report.tools = (await client.listTools()).tools;
    } catch (err) {
      report.toolsError = describe(err);
    }
    if (plan.resources) {
      try {
        report.resources = (await client.listResources()).resources;
        report.resourceReads = [];
        for (const r of report.resources) {
          report.resourceReads.push(await client.readResource({ uri: r.uri }));
        }
      } catch (err) {
        report.resourcesError = describe(err);
      }
    }
    if (plan.prompts) {
      try {
        report.prompts = (await client.listPrompts()).prompts;
      } catch (err) {
        report.promptsError = describe(err);
      }
    }
    for (const call of plan.calls || []) {
      const args = resolve(call.arguments, report.calls);
      const progress = [];
      // call.cancelWhen: the call is aborted (the SDK sends
      // notifications/cancelled) at the first progress message that
      // contains this text, as a person stopping an agent would.
      const abort = new AbortController();
      let cancelled = false;
      const onprogress = (p) => {
        progress.push(p);
        if (call.cancelWhen && !cancelled && String(p.message || "").includes(call.cancelWhen)) {
          cancelled = true;
          abort.abort();
        }
      };
      const options = call.progress || call.cancelWhen ? { onprogress } : {};
      options.signal = abort.signal;
      options.timeout = 120000;
      try {
        const result = await sdk.callTool(
          client,
          { name: call.name, arguments: args },
          options,
        );
        report.calls.push({ result, progress, cancelled });
      } catch (err) {
        report.calls.push({ error: describe(err), progress, cancelled });
      }
      if (cancelled) {
        // The SDK sends notifications/cancelled without waiting for it;
        // closing at once could abort that request, which a host that
        // keeps running never does.
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  } catch (err) {
    report.connectError = describe(err);
  } finally {
    try {
      await client.close();
    } catch (err) {
      report.closeError = describe(err);
    }
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}
