// A thin driver around the official TypeScript MCP SDK client, run by
// kastell's conformance tests. It reads a plan (JSON) from the file named by
// its first argument, connects over stdio or Streamable HTTP, lists the
// tools, resources and prompts, makes the planned calls and prints one JSON
// report on stdout. Everything the SDK rejects (a tools/list it cannot
// parse, a result that does not match its tool's output schema) is reported
// as an error string, never swallowed: the Rust test decides what passes.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const report = { sdk: "typescript", calls: [] };

function describe(err) {
  return String(err && err.message ? err.message : err);
}

const transport =
  plan.transport === "http"
    ? new StreamableHTTPClientTransport(new URL(plan.url), {
        requestInit: { headers: plan.headers || {} },
      })
    : new StdioClientTransport({
        command: plan.command,
        args: plan.args || [],
        env: plan.env || {},
        stderr: "inherit",
      });

const client = new Client({ name: "kastell-conformance-ts", version: "1.0.0" });
try {
  await client.connect(transport);
  report.serverVersion = client.getServerVersion();
  report.capabilities = client.getServerCapabilities();
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
    const progress = [];
    const options = call.progress ? { onprogress: (p) => progress.push(p) } : {};
    options.timeout = 120000;
    try {
      const result = await client.callTool(
        { name: call.name, arguments: call.arguments },
        undefined,
        options,
      );
      report.calls.push({ result, progress });
    } catch (err) {
      report.calls.push({ error: describe(err), progress });
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
