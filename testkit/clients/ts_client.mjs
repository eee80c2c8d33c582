// The official TypeScript MCP SDK, v1 (`@modelcontextprotocol/sdk`), run
// by kastell's conformance tests through ts_drive.mjs. v1 speaks the
// initialize handshake (up to 2025-11-25) and does not say which version
// it negotiated.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

import { drive } from "./ts_drive.mjs";

await drive({
  name: "typescript",
  clientName: "kastell-conformance-ts",
  Client,
  StdioClientTransport,
  StreamableHTTPClientTransport,
  clientOptions: undefined,
  // v1 takes a result schema second (undefined: its own).
  callTool: (client, params, options) => client.callTool(params, undefined, options),
  protocolVersion: () => undefined,
});
