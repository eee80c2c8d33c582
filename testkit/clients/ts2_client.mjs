// The official TypeScript MCP SDK, v2 (`@modelcontextprotocol/client`), run
// by kastell's conformance tests through ts_drive.mjs. It negotiates the
// protocol version ("auto": a server/discover probe, 2026-07-28 when the
// server offers it, else the initialize handshake) and reports the one it
// got, which the tests check.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";

import { drive } from "./ts_drive.mjs";

await drive({
  name: "typescript-v2",
  clientName: "kastell-conformance-ts2",
  Client,
  StdioClientTransport,
  StreamableHTTPClientTransport,
  clientOptions: { versionNegotiation: { mode: "auto" } },
  callTool: (client, params, options) => client.callTool(params, options),
  protocolVersion: (client) => client.getNegotiatedProtocolVersion(),
});
